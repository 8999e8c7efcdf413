defmodule Py.Object.Owner do
  @moduledoc false
  # Runs a request on the thread that owns a `%Py.Object{}` (its
  # interpreter), outside any context's namespace, and waits for the reply
  # as a call on a context does (`Py.Context.Call.await_reply/5`: callbacks
  # served, events dispatched, output complete on return, nothing left in
  # the mailbox). Used for requests whose receiver is an object
  # (in the parallel pool an object is usable only in its own interpreter)
  # and by `inspect/2` of an object.
  #
  # There is no process to monitor for the owner: if its interpreter ends
  # with the request queued, the wait ends at the timeout.

  @doc false
  @spec run(Py.Object.t(), tuple, timeout) :: {:ok, term} | {:error, Py.Error.t()}
  def run(%Py.Object{ref: ref} = object, request, timeout) do
    case Py.Isolated.Objects.owner(object) do
      nil -> run_local(ref, request, timeout)
      owner -> run_isolated(owner, request, timeout)
    end
  end

  # An object of an isolated or remote context: the request goes there.
  def run_isolated(owner, request, timeout) do
    case Py.Context.handle(owner) do
      {:ok, handle} -> Py.Context.Call.run(handle, nil, request, timeout)
      {:error, _} -> {:error, Py.Error.closed()}
    end
  end

  defp run_local(ref, request, timeout) do
    tag = make_ref()
    group_leader = Py.GroupLeader.local()

    with {:ok, job} <- submit(ref, tag, group_leader, request),
         {:ok, _} = ok <- Py.Context.Call.await_reply(tag, job, timeout, group_leader) do
      ok
    else
      {:error, %Py.Error{}} = error -> error
      {:error, _closed_or_not_queued} -> {:error, Py.Error.closed()}
    end
  end

  # A :ref that is not a live handle (nil, another term, or a copy through
  # term_to_binary of a handle since released) is a conversion error, as
  # it is for a request run on a context.
  defp submit(ref, tag, group_leader, request) do
    if is_reference(ref) do
      Py.Native.Large.submit_to_owner(ref, tag, group_leader, request)
    else
      {:error, not_live()}
    end
  rescue
    ArgumentError -> {:error, not_live()}
  end

  defp not_live do
    %Py.Error{
      kind: :conversion,
      message:
        "the %Py.Object{} is not a live handle: it was released, or copied " <>
          "(:erlang.term_to_binary/1, another node) after its original was released, " <>
          "or built by hand"
    }
  end
end
