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

  The repr runs on the thread that owns the object, with callbacks from
  `__repr__` served. If it takes longer than 250 ms (the owner is busy with
  a long call, or `__repr__` is slow) it is interrupted and `inspect/1`
  shows the type only: `#Py.Object<collections.OrderedDict>`. A handle that
  is not live shows as `#Py.Object<released collections.OrderedDict>`, at
  once: a copy made with `:erlang.term_to_binary/1` (or sent to another
  node) after the original was released, or a struct built by hand.

  In the parallel pool an object is usable only in the interpreter that made
  it. A call whose receiver is an object (`Py.call_method/4`,
  `Py.getattr/3`, `Py.call/4` with the object in place of a module,
  `Py.repr/2`) without a `:context` or `:pool` option therefore runs on the
  object's owner, wherever the calling process is bound.
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

  @inspect_timeout 250

  @doc false
  # The repr of `object`, run on its owner in a process of its own, so that
  # nothing of it (late io replies, callback requests) is left in the
  # caller's mailbox, whatever process inspects (a shell, Logger, a crash
  # report). Callbacks from `__repr__` are served. A busy owner or a slow
  # `__repr__` gives `{:error, %Py.Error{kind: :timeout}}` after `timeout`
  # ms (the repr is interrupted).
  @spec owner_repr(t, non_neg_integer) :: {:ok, String.t()} | {:error, Py.Error.t()}
  def owner_repr(%Py.Object{} = object, timeout \\ @inspect_timeout) do
    group_leader = Process.group_leader()

    {pid, mref} =
      spawn_monitor(fn ->
        Process.group_leader(self(), group_leader)
        exit({:shutdown, {:repr, safe_run(object, timeout)}})
      end)

    receive do
      {:DOWN, ^mref, :process, ^pid, {:shutdown, {:repr, result}}} ->
        result

      {:DOWN, ^mref, :process, ^pid, reason} ->
        # `structs: false`: the reason may hold the object, whose Inspect
        # would run this again.
        {:error,
         %Py.Error{
           kind: :internal,
           message: "repr failed: #{inspect(reason, structs: false, limit: 20)}"
         }}
    after
      # The run ends itself at `timeout`; this only guards against an
      # output device that never answers.
      timeout + 1_000 ->
        Process.demonitor(mref, [:flush])
        Process.exit(pid, :kill)
        {:error, Py.Error.timeout(timeout)}
    end
  end

  # The repr process never crashes: its crash report would inspect the
  # object (in the request), which would start another repr process.
  defp safe_run(object, timeout) do
    Py.Object.Owner.run(object, {:repr, object}, timeout)
  catch
    kind, reason ->
      {:error,
       %Py.Error{
         kind: :internal,
         message: "repr failed: " <> inspect({kind, reason}, structs: false, limit: 20)
       }}
  end

  @doc false
  # Whether the handle may be live: its :ref is a reference (a resource).
  # Whether it still is (not a copy made by term_to_binary/binary_to_term or
  # on another node after the original was released) only the NIF can say.
  def handle?(%Py.Object{ref: ref}), do: is_reference(ref)

  defimpl Inspect do
    # Runs repr on the thread that owns the object (its interpreter),
    # without binding the inspecting process; waits at most 250 ms (a busy
    # owner shows the type only). A handle that is not live (released, a
    # copy through term_to_binary or another node, `ref: nil`) shows as
    # `#Py.Object<released>`, at once.
    def inspect(%Py.Object{type: type} = object, _opts) do
      if Py.Object.handle?(object) do
        case Py.Object.owner_repr(object) do
          {:ok, repr} -> "#Py.Object<" <> repr <> ">"
          {:error, %Py.Error{kind: :conversion}} -> released(type)
          _ -> "#Py.Object<" <> type_name(type) <> ">"
        end
      else
        released(type)
      end
    end

    defp released(type) when is_binary(type), do: "#Py.Object<released " <> type <> ">"
    defp released(_type), do: "#Py.Object<released>"

    defp type_name(type) when is_binary(type), do: type
    defp type_name(_type), do: "?"
  end
end
