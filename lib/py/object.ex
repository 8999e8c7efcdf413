defmodule Py.Object do
  @moduledoc """
  A handle to a live Python object.

  Python values with no Elixir counterpart (modules, class instances,
  numpy arrays, ...) come back as `%Py.Object{}`; any call can return one on
  request with `return: :object`. Handles can be passed as arguments and used
  as receivers (`Py.getattr/3`, `Py.call_method/4`, `Py.call/4` with the
  object in place of a module).

  `:type` is the Python type name (`"collections.OrderedDict"`, `"int"`).
  The object lives as long as the handle: when the last copy of the term is
  garbage collected, the reference is released on the Python thread that owns
  it (never on a BEAM scheduler).

  `inspect/1` shows the Python `repr`:

      {:ok, obj} = Py.eval("object()", %{}, return: :object)
      inspect(obj)
      #=> "#Py.Object<<object object at 0x7f...>>"
  """

  @enforce_keys [:ref, :type]
  defstruct [:ref, :type]

  @type t :: %__MODULE__{ref: reference(), type: String.t()}

  @doc """
  The number of `%Py.Object{}` handles alive in this VM.
  """
  @spec live_count() :: non_neg_integer()
  def live_count, do: Py.Native.live_objects()

  @doc """
  Waits up to `timeout` ms until at most `limit` handles are alive; returns
  whether that happened. The BEAM may run the release of a garbage-collected
  handle shortly after the collection; once the count has fallen, the
  Python-side releases are queued ahead of any later call.
  """
  @spec await_live_count(non_neg_integer, non_neg_integer) :: boolean
  def await_live_count(limit, timeout \\ 5_000), do: Py.Native.await_live_objects(limit, timeout)

  defimpl Inspect do
    # Runs repr on a pool context without binding the inspecting process.
    def inspect(%Py.Object{type: type} = object, _opts) do
      with {:ok, handle} <- Py.Pool.pick(),
           {:ok, repr} when is_binary(repr) <-
             Py.Context.run(handle, nil, {:repr, object}, 5_000) do
        "#Py.Object<" <> repr <> ">"
      else
        _ -> "#Py.Object<" <> to_string(type) <> ">"
      end
    end
  end
end
