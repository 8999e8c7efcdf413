defmodule Py.Error do
  @moduledoc """
  The error every `py` function returns (`{:error, %Py.Error{}}`) or raises
  (the `!` variants).

  Fields:

    * `:kind` - what went wrong:
      * `:python` - Python raised; `:type`, `:message` and `:traceback` say what
      * `:timeout` - the call did not finish within its `:timeout`; the
        running Python code was interrupted and the context stays usable
      * `:closed` - the context stopped (or died) before the call finished
      * `:interrupted` - `Py.interrupt/1` interrupted the call
      * `:overloaded` - the pool's contexts have `:max_queue` calls waiting
        already: the call was not queued (see `Py.Pool.start_link/1`)
      * `:crashed` - the OS process of an isolated context (or the node of a
        remote one) ended during the call: a segfault, `abort()`,
        `os._exit`, the OOM killer, a kill from outside; the message says
        which signal or exit status. The context restarts by itself
      * `:conversion` - a value could not cross between Elixir and Python;
        the message says which value and where in it
      * `:invalid` - the request itself was malformed (bad name, bad args)
      * `:runtime` - the Python runtime is not available
      * `:environment` - a virtual environment cannot be used (not a venv,
        made for another Python), or `Py.install/2` failed; the message
        carries the installer's own output
      * `:internal` - a bug in `py`; please report it
    * `:type` - the Python exception type, e.g. `"ValueError"` or
      `"json.decoder.JSONDecodeError"` (module-qualified unless builtin)
    * `:message` - the human-readable message
    * `:traceback` - Python's formatted traceback, when there is one
    * `:line`, `:offset`, `:text` - for a `SyntaxError` (and its subclasses):
      the line and column (1-based) where Python stopped, and that line
    * `:exception` - the exception itself, a `%Py.Object{}`, when the call
      was made with `exception: true` (else `nil`; also `nil` from isolated
      and remote contexts for now)

  ## Examples

      iex> error = %Py.Error{kind: :python, type: "ZeroDivisionError", message: "division by zero"}
      iex> Exception.message(error)
      "ZeroDivisionError: division by zero"

      iex> Exception.message(%Py.Error{kind: :timeout, message: "call timed out after 500 ms"})
      "call timed out after 500 ms"
  """

  @type kind ::
          :python
          | :timeout
          | :closed
          | :crashed
          | :overloaded
          | :interrupted
          | :conversion
          | :invalid
          | :runtime
          | :environment
          | :internal

  @type t :: %__MODULE__{
          kind: kind,
          type: String.t() | nil,
          message: String.t(),
          traceback: String.t() | nil,
          line: pos_integer | nil,
          offset: integer | nil,
          text: String.t() | nil,
          exception: Py.Object.t() | nil
        }

  defexception kind: :python,
               type: nil,
               message: "",
               traceback: nil,
               line: nil,
               offset: nil,
               text: nil,
               exception: nil

  @impl true
  def message(%__MODULE__{type: nil, message: message}), do: message
  def message(%__MODULE__{type: type, message: message}), do: "#{type}: #{message}"

  @doc false
  # Builds the struct from the NIF's `{kind, ...}` reason.
  # `Py.interrupt/1` raised erlang.Interrupted in the call (a timeout's
  # interrupt never reaches the caller, which has gone on).
  def from_native({:python, "erlang.Interrupted" = type, message, traceback}),
    do: %__MODULE__{kind: :interrupted, type: type, message: message, traceback: traceback}

  def from_native({:python, type, message, traceback}),
    do: %__MODULE__{kind: :python, type: type, message: message, traceback: traceback}

  # With more to say: a SyntaxError's place, a kept exception object.
  def from_native({:python, type, message, traceback, extra}) when is_map(extra) do
    error = from_native({:python, type, message, traceback})

    %{
      error
      | line: Map.get(extra, :line),
        offset: Map.get(extra, :offset),
        text: Map.get(extra, :text),
        exception: Map.get(extra, :exception)
    }
  end

  def from_native({kind, message}) when is_atom(kind) and is_binary(message),
    do: %__MODULE__{kind: kind, message: message}

  def from_native(other),
    do: %__MODULE__{kind: :internal, message: "unexpected native error: #{inspect(other)}"}

  @doc false
  def closed do
    %__MODULE__{
      kind: :closed,
      message: "the Python context stopped before the call finished; start a new one or retry"
    }
  end

  @doc false
  def overloaded(pool, max) do
    %__MODULE__{
      kind: :overloaded,
      message:
        "the py pool #{inspect(pool)} has #{max} calls waiting on this process's context " <>
          "already (its :max_queue); the call was not queued"
    }
  end

  @doc false
  def timeout(ms) do
    %__MODULE__{
      kind: :timeout,
      message:
        "the Python call did not finish within #{ms} ms; it was interrupted " <>
          "(pass a larger :timeout if it needs more time)"
    }
  end
end
