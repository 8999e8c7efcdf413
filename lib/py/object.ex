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

  @doc false
  def owner_repr(%Py.Object{ref: ref} = object, timeout \\ 5_000) do
    tag = make_ref()

    case Py.Native.submit_to_owner(ref, tag, Process.group_leader(), {:repr, object}) do
      {:ok, job} ->
        await_repr(tag, job, timeout)

      {:error, :closed} ->
        {:error, Py.Error.closed()}
    end
  end

  defp await_repr(tag, job, timeout) do
    receive do
      {^tag, {:ok, repr}, _io} ->
        {:ok, repr}

      {^tag, {:error, reason}, _io} ->
        {:error, Py.Error.from_native(reason)}

      # A log record or span from the __repr__.
      {^tag, :py_event, kind, payload} ->
        Py.EventSink.dispatch(kind, payload)
        await_repr(tag, job, timeout)
    after
      timeout ->
        Py.Native.cancel(job)

        receive do
          {^tag, _, _} -> :ok
        after
          0 -> :ok
        end

        {:error, Py.Error.timeout(timeout)}
    end
  end

  defimpl Inspect do
    # Runs repr on the thread that owns the object (its interpreter),
    # without binding the inspecting process.
    def inspect(%Py.Object{type: type} = object, _opts) do
      case Py.Object.owner_repr(object) do
        {:ok, repr} -> "#Py.Object<" <> repr <> ">"
        _ -> "#Py.Object<" <> to_string(type) <> ">"
      end
    end
  end
end
