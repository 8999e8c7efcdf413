defmodule Py.Options do
  @moduledoc false
  # Checks of what callers pass to the public functions, shared by them: a
  # bad value raises ArgumentError naming the value and what to pass,
  # rather than an error from deep inside (FunctionClauseError in
  # GenServer.whereis, ArithmeticError in a timer, ...).

  @doc false
  # Options must be a keyword list.
  def keyword!(opts) do
    if is_list(opts) and Keyword.keyword?(opts) do
      opts
    else
      raise ArgumentError,
            "py options must be a keyword list, for example [timeout: 5_000], got: " <>
              inspect(opts)
    end
  end

  @doc false
  # The same, for the options of `function`, with an example of them.
  def keyword!(opts, function, example) do
    if is_list(opts) and Keyword.keyword?(opts) do
      opts
    else
      raise ArgumentError,
            "the options of #{function} must be a keyword list, for example #{example}, " <>
              "got: " <> inspect(opts)
    end
  end

  @doc false
  # A context: a pid or the name it was started under (an atom,
  # `{:global, term}` or `{:via, module, term}`).
  def context!(context) when is_pid(context), do: context
  def context!(context) when is_atom(context) and context != nil, do: context
  def context!({:global, _} = context), do: context

  def context!({:via, module, _} = context) when is_atom(module) do
    if Code.ensure_loaded?(module) and function_exported?(module, :whereis_name, 1) do
      context
    else
      raise ArgumentError,
            "the :via module #{inspect(module)} of context #{inspect(context)} does not " <>
              "export whereis_name/1; pass a registry module such as Registry"
    end
  end

  def context!(context) do
    raise ArgumentError,
          "a context is a Py.Context pid or the name it was started under (an atom, " <>
            "{:global, name} or {:via, module, name}), got: #{inspect(context)}"
  end

  @doc false
  # Python source code: a string. A charlist ('1 + 1') is named as such.
  def code!(code, _function) when is_binary(code), do: code

  def code!(code, function) when is_list(code) and code != [] do
    if List.ascii_printable?(code) or :io_lib.printable_unicode_list(code) do
      raise ArgumentError,
            "#{function} takes the code as a string, got the charlist #{inspect(code)}: " <>
              "use double quotes (\"...\"), not single quotes"
    else
      not_a_string!(code, function)
    end
  end

  def code!(code, function), do: not_a_string!(code, function)

  defp not_a_string!(code, function) do
    raise ArgumentError, "#{function} takes the code as a string, got: #{inspect(code)}"
  end

  @doc false
  # The :max_size option of a channel or buffer: a positive integer, or
  # :infinity (the default), given to the NIF as 0.
  def max_size!(opts, function, unit) do
    case Keyword.get(keyword!(opts), :max_size, :infinity) do
      :infinity ->
        0

      n when is_integer(n) and n > 0 ->
        n

      other ->
        raise ArgumentError,
              "the :max_size option of #{function} must be a positive integer#{unit} " <>
                "or :infinity, got: #{inspect(other)}"
    end
  end

  @doc false
  # The :timeout option of a call: ms, :infinity, or the configured default.
  def timeout!(opts) do
    case Keyword.get(opts, :timeout) do
      nil ->
        Py.Config.default_timeout()

      ms when is_integer(ms) and ms >= 0 ->
        ms

      :infinity ->
        :infinity

      other ->
        raise ArgumentError,
              "the :timeout option must be a non-negative integer or :infinity, got: #{inspect(other)}"
    end
  end
end
