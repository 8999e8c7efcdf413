defmodule Py.Logger do
  @moduledoc """
  Python's `logging` records in Elixir's `Logger`.

  Every interpreter py starts has a handler on its root logger that sends
  records to Elixir. A record made by code running in a call is logged by
  the process that made the call, before the call returns (so it carries
  that process's Logger metadata, and `ExUnit.CaptureLog` sees it); a
  record from a Python thread outside any call is logged by py's event
  sink process.

  Levels map as DEBUG -> `:debug`, INFO -> `:info`, WARNING -> `:warning`,
  ERROR -> `:error`, CRITICAL -> `:critical`. Each record carries this
  metadata (fixed keys; the values are Python's strings and numbers):

    * `:py_logger` - the Python logger's name (`"root"`, `"myapp.db"`)
    * `:py_module`, `:py_function`, `:py_line`, `:py_file` - where it was logged
    * `:py_thread` - the Python thread's name
    * `:domain` - `[:py]` (Elixir's Logger adds `:elixir` in front)

  The level that records must reach to be forwarded comes from
  `config :py, log_level: :warning` (the default, as in Python) and can be
  changed at runtime with `set_level/1`; `:none` turns forwarding off (py
  then leaves Python's logging alone).

      Py.Logger.set_level(:info)
      Py.exec("import logging; logging.getLogger('app').info('ready')")
      # [info] ready     (metadata py_logger: "app", py_line: 1, ...)

  See `docs/observability.md`.
  """

  @level_key {__MODULE__, :level}
  @levels [:debug, :info, :warning, :error, :critical, :none]

  @typedoc "A forwarding level; `:none` forwards nothing."
  @type level :: :debug | :info | :warning | :error | :critical | :none

  @doc "The current forwarding level."
  @spec level() :: level
  def level, do: :persistent_term.get(@level_key, :warning)

  @doc """
  Sets the forwarding level in every interpreter. Each interpreter applies
  it (Python's root logger level and py's handler) before its next call.
  """
  @spec set_level(level) :: :ok
  def set_level(level) do
    levelno = levelno!(level, "Py.Logger.set_level/1")
    :persistent_term.put(@level_key, level)
    Py.Native.log_level_set(levelno)
  end

  @doc false
  # Python's level number for a forwarding level (-1: off).
  def levelno!(level, where) do
    case level do
      :debug ->
        10

      :info ->
        20

      :warning ->
        30

      :error ->
        40

      :critical ->
        50

      :none ->
        -1

      other ->
        raise ArgumentError,
              "#{where}: the level must be one of #{inspect(@levels)}, got: #{inspect(other)}"
    end
  end

  @doc false
  def put_level(level), do: :persistent_term.put(@level_key, level)

  @doc false
  # A record from Python: {levelno, logger, message, module, line, function, file, thread}.
  def handle_record({levelno, name, message, module, line, function, file, thread})
      when is_integer(levelno) do
    Logger.bare_log(elixir_level(levelno), message,
      domain: [:py],
      py_logger: name,
      py_module: module,
      py_function: function,
      py_line: line,
      py_file: file,
      py_thread: thread
    )
  end

  def handle_record(_other), do: :ok

  defp elixir_level(n) when n <= 10, do: :debug
  defp elixir_level(n) when n <= 20, do: :info
  defp elixir_level(n) when n <= 30, do: :warning
  defp elixir_level(n) when n <= 40, do: :error
  defp elixir_level(_), do: :critical
end
