defmodule Py.Stream do
  @moduledoc false
  # Python iterators as lazy Elixir streams. The first chunk comes back
  # with the call that makes the iterable (`:stream_start`): an iterable
  # that ends within it costs one round trip. Later chunks double, up to
  # @growth times the first, while the consumer keeps taking. The iterator
  # is closed when the stream halts early.

  @growth 16

  @run_options [:timeout, :context, :pool]

  # `request`: the `{:call, ...}` or `{:eval, ...}` that makes the iterable.
  def new(request, opts) do
    opts = Py.Options.keyword!(opts)
    chunk_size = Keyword.get(opts, :chunk_size, 100)

    unless is_integer(chunk_size) and chunk_size > 0 do
      raise ArgumentError,
            "the :chunk_size option must be a positive integer, got: #{inspect(chunk_size)}"
    end

    run_opts = Keyword.take(opts, @run_options)

    Stream.resource(
      fn -> {:start, request} end,
      fn
        {:start, request} ->
          case Py.Dispatch.run({:stream_start, request, chunk_size}, run_opts) do
            {:ok, {items, true, nil}} -> {items, :done}
            {:ok, {items, false, iterator}} -> {items, {iterator, grow(chunk_size, chunk_size)}}
            {:error, error} -> raise error
          end

        :done ->
          {:halt, :done}

        {iterator, size} ->
          case Py.Dispatch.run({:next_chunk, iterator, size}, run_opts) do
            {:ok, {items, false}} -> {items, {iterator, grow(size, chunk_size)}}
            {:ok, {items, true}} -> {items, :done}
            {:error, error} -> raise error
          end
      end,
      fn
        {iterator, _size} -> Py.Dispatch.run({:close, iterator}, run_opts)
        _ -> :ok
      end
    )
  end

  defp grow(size, first), do: min(size * 2, first * @growth)
end
