defmodule Py.Preload do
  @moduledoc false
  # Preloads (`config :py, preload:` and `Py.preload/1`): import paths,
  # code and imports that every interpreter gets, including parallel-pool
  # slots made later and the processes of isolated contexts. The native
  # side applies them (preload.rs).

  require Logger

  @doc "Checks `opts`: `{paths, imports, code}`, or raises ArgumentError."
  def options!(opts) do
    opts = Py.Options.keyword!(opts, "Py.preload/1", ~s([imports: ["json"]]))

    case Keyword.keys(opts) -- [:paths, :imports, :code] do
      [] ->
        :ok

      other ->
        raise ArgumentError,
              "Py.preload/1 takes :paths, :imports and :code, got: #{inspect(other)}"
    end

    paths = strings!(Keyword.get(opts, :paths, []), :paths)
    imports = strings!(Keyword.get(opts, :imports, []), :imports)

    code =
      case Keyword.get(opts, :code) do
        nil ->
          nil

        code when is_binary(code) ->
          code

        other ->
          raise ArgumentError, "the :code of a preload must be a string, got: #{inspect(other)}"
      end

    {paths, imports, code}
  end

  defp strings!(list, key) when is_list(list) do
    Enum.map(list, fn
      item when is_binary(item) ->
        item

      item when is_atom(item) and item not in [nil, true, false] ->
        Atom.to_string(item)

      other ->
        raise ArgumentError,
              "the #{inspect(key)} of a preload must be strings, got: #{inspect(other)}"
    end)
  end

  defp strings!(other, key),
    do:
      raise(
        ArgumentError,
        "the #{inspect(key)} of a preload must be a list, got: #{inspect(other)}"
      )

  @doc """
  Adds a preload: applied in the main interpreter now (`:ok` or an error
  from it), in every sub-interpreter slot before its next call, and in the
  processes of isolated contexts (now and when they start).
  """
  def add(opts) do
    {paths, imports, code} = spec = options!(opts)

    case Py.Native.preload_add(paths, imports, code) do
      {:ok, _} ->
        preloaded = Application.get_env(:py, :preloaded, [])
        Application.put_env(:py, :preloaded, preloaded ++ [spec])
        Py.Isolated.Context.preload_added(spec)
        :ok

      {:error, message} ->
        {:error, %Py.Error{kind: :python, message: "the preload failed: " <> message}}
    end
  end

  @doc "Applies `spec` here (on an isolated context's node)."
  def apply({paths, imports, code}) do
    case Py.Native.preload_add(paths, imports, code) do
      {:ok, _} -> :ok
      {:error, message} -> {:error, message}
    end
  end

  # A step of the application's start: `config :py, preload:` (a keyword
  # list, or a list of them), then what `Py.preload/1` added in the VM that
  # started this one (an isolated context's process).
  @doc false
  def child_spec(_) do
    %{id: __MODULE__, start: {__MODULE__, :start_configured, []}, restart: :temporary}
  end

  @doc false
  def start_configured do
    configured =
      case Application.get_env(:py, :preload) do
        nil ->
          []

        [{key, _} | _] = one when is_atom(key) ->
          [options!(one)]

        many when is_list(many) ->
          Enum.map(many, &options!/1)

        other ->
          raise ArgumentError,
                "config :py, preload: must be a keyword list, got: #{inspect(other)}"
      end

    result =
      Enum.reduce_while(configured, :ignore, fn spec, _ ->
        case apply(spec) do
          :ok -> {:cont, :ignore}
          {:error, message} -> {:halt, {:error, "config :py, preload: " <> message}}
        end
      end)

    # Those added at run time in the VM that started this one worked there;
    # one that fails here (a path since removed) is reported, not fatal.
    for spec <- Application.get_env(:py, :preloaded, []) do
      with {:error, message} <- apply(spec) do
        Logger.warning("py: a preload failed in this isolated context's process: " <> message)
      end
    end

    result
  end
end
