defmodule Py.Config do
  @moduledoc false
  # Settings read once at start and kept where the hot path reads them
  # cheaply.

  @timeout_key {__MODULE__, :timeout}

  def load do
    :persistent_term.put(@timeout_key, timeout())
  end

  defp timeout do
    case Application.get_env(:py, :timeout, 30_000) do
      ms when is_integer(ms) and ms >= 0 ->
        ms

      :infinity ->
        :infinity

      other ->
        raise ArgumentError,
              "config :py, timeout: must be a non-negative integer (milliseconds) or " <>
                ":infinity, got: #{inspect(other)}"
    end
  end

  def default_timeout, do: :persistent_term.get(@timeout_key, 30_000)

  def parallel_slots, do: positive(:parallel_slots, System.schedulers_online())

  def pool_size, do: positive(:pool_size, System.schedulers_online())

  @doc false
  # The pools' default bound on calls waiting on a context.
  def max_queue do
    case Application.get_env(:py, :max_queue, :infinity) do
      n when (is_integer(n) and n >= 0) or n == :infinity ->
        n

      other ->
        raise ArgumentError,
              "config :py, max_queue: must be a non-negative integer or :infinity, got: " <>
                inspect(other)
    end
  end

  @doc false
  # How long (ms) a context's interrupted call may go on before the context
  # is retired (see Py.Context); read when a context starts.
  def retire_after, do: positive(:retire_after, 5_000)

  @doc false
  # The observability, fork and process guard settings every interpreter
  # reads as it starts: call before the runtime starts.
  def configure_native do
    level = Application.get_env(:py, :log_level, :warning)
    levelno = Py.Logger.levelno!(level, "config :py, log_level")
    tracing = boolean(:tracing)
    allow_fork = boolean(:allow_fork)
    allow_process_exit = boolean(:allow_process_exit)
    Py.Logger.put_level(level)
    :persistent_term.put({Py.Trace, :enabled}, tracing)
    :ok = Py.Native.observe_configure(levelno, tracing, allow_fork, allow_process_exit)
    # Large maps from Python are built in one go where the VM allows it
    # off a scheduler thread: OTP 27.3 and later (see convert/mod.rs).
    Py.Native.convert_configure(Py.OTP.at_least?([27, 3]))
  end

  defp boolean(key) do
    case Application.get_env(:py, key, false) do
      value when is_boolean(value) ->
        value

      other ->
        raise ArgumentError, "config :py, #{key}: must be true or false, got: #{inspect(other)}"
    end
  end

  defp positive(key, default) do
    case Application.get_env(:py, key, default) do
      n when is_integer(n) and n > 0 ->
        n

      other ->
        raise ArgumentError,
              "config :py, #{key}: must be a positive integer, got: #{inspect(other)}"
    end
  end
end
