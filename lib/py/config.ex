defmodule Py.Config do
  @moduledoc false
  # Settings read once at start and kept where the hot path reads them
  # cheaply.

  @timeout_key {__MODULE__, :timeout}

  def load do
    :persistent_term.put(@timeout_key, Application.get_env(:py, :timeout, 30_000))
  end

  def default_timeout, do: :persistent_term.get(@timeout_key, 30_000)

  def parallel_slots, do: positive(:parallel_slots, System.schedulers_online())

  def pool_size, do: positive(:pool_size, System.schedulers_online())

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
