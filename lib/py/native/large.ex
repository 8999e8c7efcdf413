defmodule Py.Native.Large do
  @moduledoc false
  # The NIFs that copy a term into an env of their own (a request, a
  # callback's answer, a channel message) cannot yield while they copy. For
  # a term too large to copy within a scheduler's time slice they copy
  # nothing and answer `:large` (native/py_nif/src/copy_cost.rs); these
  # functions then repeat the call with its twin on a dirty scheduler. Any
  # other answer is returned as it came.

  def submit(ctx, namespace, ref, group_leader, request, identity) do
    case Py.Native.submit(ctx, namespace, ref, group_leader, request, identity) do
      :large -> Py.Native.submit_large(ctx, namespace, ref, group_leader, request, identity)
      answer -> answer
    end
  end

  def submit_to_owner(object, ref, group_leader, request) do
    case Py.Native.submit_to_owner(object, ref, group_leader, request) do
      :large -> Py.Native.submit_to_owner_large(object, ref, group_leader, request)
      answer -> answer
    end
  end

  def callback_reply(handle, result) do
    case Py.Native.callback_reply(handle, result) do
      :large -> Py.Native.callback_reply_large(handle, result)
      answer -> answer
    end
  end

  def thread_reply(handle, result) do
    case Py.Native.thread_reply(handle, result) do
      :large -> Py.Native.thread_reply_large(handle, result)
      answer -> answer
    end
  end

  def channel_send(channel, term) do
    case Py.Native.channel_send(channel, term) do
      :large -> Py.Native.channel_send_large(channel, term)
      answer -> answer
    end
  end
end
