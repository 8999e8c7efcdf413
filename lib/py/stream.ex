defmodule Py.Stream do
  @moduledoc false
  # Python iterators as lazy Elixir streams: items cross `chunk_size` at a
  # time; the iterator is closed when the stream halts early.

  @run_options [:timeout, :context, :pool]

  def new(start, opts) do
    opts = Py.Options.keyword!(opts)
    chunk_size = Keyword.get(opts, :chunk_size, 100)

    unless is_integer(chunk_size) and chunk_size > 0 do
      raise ArgumentError,
            "the :chunk_size option must be a positive integer, got: #{inspect(chunk_size)}"
    end

    run_opts = Keyword.take(opts, @run_options)

    Stream.resource(
      fn -> iterator(start, run_opts) end,
      fn
        {:done, _} = done ->
          {:halt, done}

        iterator ->
          case Py.Dispatch.run({:next_chunk, iterator, chunk_size}, run_opts) do
            {:ok, {items, false}} -> {items, iterator}
            {:ok, {items, true}} -> {items, {:done, iterator}}
            {:error, error} -> raise error
          end
      end,
      fn
        {:done, _} -> :ok
        iterator -> Py.Dispatch.run({:close, iterator}, run_opts)
      end
    )
  end

  defp iterator(start, run_opts) do
    iterable = start.([{:return, :object} | run_opts])
    Py.call!(:erlang, :_iterator, [iterable], [{:return, :object} | run_opts])
  end
end
