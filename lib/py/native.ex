defmodule Py.Native do
  @moduledoc false
  # NIF stubs. The library is built by `Mix.Tasks.Compile.PyNative` into
  # the application's priv/native. Loading never fails the module: a missing
  # or broken library is reported by `Py.Runtime` with a clear message.

  @on_load :load
  @load_error {__MODULE__, :load_error}

  def load do
    path = :filename.join([:code.priv_dir(:py), ~c"native", ~c"libpy_nif"])

    # The native side learns MapSet's layout from this template rather than
    # spelling out a private representation (see convert/mapset.rs).
    case :erlang.load_nif(path, MapSet.new([:__py_mapset_probe__])) do
      :ok ->
        :ok

      {:error, {_reason, text}} ->
        :persistent_term.put(@load_error, to_string(text))
        :ok
    end
  end

  @doc false
  def load_error, do: :persistent_term.get(@load_error, nil)

  def runtime_start(_executable, _slots), do: err()
  def mode, do: err()
  def slot_count, do: err()
  def slot_recreate(_index), do: err()
  def context_new(_interpreter), do: err()
  def context_close(_ctx), do: err()
  def context_open(_ctx), do: err()
  def context_wait(_ctx, _timeout_ms), do: err()
  def context_load(_ctx), do: err()
  def context_stuck(_ctx, _job), do: err()
  def context_retire(_ctx), do: err()
  def context_interrupt(_ctx), do: err()
  def context_beside(_ctx, _function, _arg, _tag), do: err()
  def preload_add(_paths, _imports, _code), do: err()
  def namespace_new(_ctx), do: err()
  def submit(_ctx, _namespace, _ref, _group_leader, _request, _identity), do: err()
  def submit_large(_ctx, _namespace, _ref, _group_leader, _request, _identity), do: err()
  def submit_to_owner(_object, _ref, _group_leader, _request), do: err()
  def submit_to_owner_large(_object, _ref, _group_leader, _request), do: err()
  def cancel(_job), do: err()
  def callback_register(_name), do: err()
  def callback_unregister(_name), do: err()
  def callback_reply(_handle, _result), do: err()
  def callback_reply_large(_handle, _result), do: err()
  def callback_answered(_handle), do: err()
  def callback_route(_job, _worker), do: err()
  def callback_unroute(_job), do: err()
  def live_objects, do: err()
  def await_live_objects(_limit, _timeout_ms), do: err()
  def venv_set(_spec), do: err()
  def venv_current, do: err()
  def observe_configure(_log_level, _tracing, _allow_fork, _allow_process_exit), do: err()
  def convert_configure(_large_maps_in_one_go), do: err()
  def log_level_set(_level), do: err()
  def tracing_set(_on), do: err()
  def sink_set(_pid), do: err()
  def thread_reply(_handle, _result), do: err()
  def thread_reply_large(_handle, _result), do: err()
  def channel_new(_capacity), do: err()
  def channel_send(_channel, _term), do: err()
  def channel_send_large(_channel, _term), do: err()
  def channel_close(_channel), do: err()
  def buffer_new(_max_size), do: err()
  def buffer_write(_buffer, _data), do: err()
  def buffer_close(_buffer), do: err()
  def remote_object_new(_owner, _generation, _id), do: err()
  def remote_object_info(_term), do: err()
  def link_listen, do: err()
  def link_connect(_name, _ctx), do: err()
  def link_call(_link, _frame), do: err()
  def link_forget(_link), do: err()
  def link_await(_link, _timeout_ms), do: err()
  def link_namespace(_link, _namespace), do: err()
  def link_namespace_drop(_link, _id), do: err()
  def link_job(_link, _id), do: err()

  defp err, do: :erlang.nif_error(:nif_not_loaded)
end
