defmodule Py.Memory do
  @moduledoc """
  Python's memory and garbage collector, from Elixir.

  Each function runs in one interpreter: the one of the context the call
  goes to (the calling process's pool context, or `context: ctx`). In
  worker mode all contexts share the main interpreter; in the parallel pool
  each slot has its own heap and collector. Options not listed are passed
  to `Py.call/4` (`:context`, `:pool`, `:timeout`).

      {:ok, stats} = Py.Memory.stats()
      stats.allocated_blocks        #=> 61234
      {:ok, freed} = Py.Memory.gc_collect()

      :ok = Py.Memory.tracemalloc_start()
      Py.exec!("data = [bytes(1000) for _ in range(1000)]")
      {:ok, %{total_bytes: total, top: [%{file: file, line: line, size: size} | _]}} =
        Py.Memory.tracemalloc_snapshot(top: 5)
      :ok = Py.Memory.tracemalloc_stop()

  See `docs/observability.md`.
  """

  @type stats :: %{
          gc_enabled: boolean,
          gc_counts: [non_neg_integer],
          gc_thresholds: [non_neg_integer],
          gc_generations: [
            %{
              collections: non_neg_integer,
              collected: non_neg_integer,
              uncollectable: non_neg_integer
            }
          ],
          gc_garbage: non_neg_integer,
          allocated_blocks: non_neg_integer,
          rss_bytes: non_neg_integer | nil,
          peak_rss_bytes: non_neg_integer | nil,
          tracemalloc:
            %{tracing: boolean, current_bytes: non_neg_integer, peak_bytes: non_neg_integer}
            | nil
        }

  @doc """
  Memory statistics of one interpreter:

    * `:gc_enabled`, `:gc_counts`, `:gc_thresholds` - `gc.isenabled()`,
      `gc.get_count()`, `gc.get_threshold()`
    * `:gc_generations` - `gc.get_stats()`, one map per generation
    * `:gc_garbage` - `len(gc.garbage)` (uncollectable objects kept)
    * `:allocated_blocks` - `sys.getallocatedblocks()`
    * `:rss_bytes`, `:peak_rss_bytes` - resident memory of the whole OS
      process (the BEAM included), when the platform tells
    * `:tracemalloc` - whether tracemalloc traces, and its current and
      peak traced bytes; `nil` in a parallel pool slot, where CPython does
      not allow tracemalloc
  """
  @spec stats(keyword) :: {:ok, stats} | {:error, Py.Error.t()}
  def stats(opts \\ []) do
    with {:ok, raw} <- Py.call(:erlang, :_memory_stats, [], opts) do
      {enabled, counts, thresholds, generations, garbage, blocks, rss, peak, traced} = raw

      {:ok,
       %{
         gc_enabled: enabled,
         gc_counts: counts,
         gc_thresholds: thresholds,
         gc_generations:
           Enum.map(generations, fn {collections, collected, uncollectable} ->
             %{collections: collections, collected: collected, uncollectable: uncollectable}
           end),
         gc_garbage: garbage,
         allocated_blocks: blocks,
         rss_bytes: rss,
         peak_rss_bytes: peak,
         tracemalloc: tracemalloc(traced)
       }}
    end
  end

  defp tracemalloc(nil), do: nil

  defp tracemalloc({tracing, current, peak}),
    do: %{tracing: tracing, current_bytes: current, peak_bytes: peak}

  @doc """
  Runs `gc.collect(generation)` (0, 1 or 2; default 2, a full collection)
  and returns the number of unreachable objects it found.
  """
  @spec gc_collect(0..2, keyword) :: {:ok, non_neg_integer} | {:error, Py.Error.t()}
  def gc_collect(generation \\ 2, opts \\ [])

  def gc_collect(generation, opts) when generation in 0..2,
    do: Py.call(:gc, :collect, [generation], opts)

  def gc_collect(generation, _opts) do
    raise ArgumentError,
          "Py.Memory.gc_collect/2: the generation must be 0, 1 or 2, got: #{inspect(generation)}"
  end

  @doc """
  Starts tracing Python allocations (`tracemalloc.start(frames)`), keeping
  `frames` frames of traceback per allocation. Tracing slows Python down;
  stop it when done.

  tracemalloc exists only in the main interpreter: in the parallel pool,
  pass `context:` a context started with `interpreter: :main` (a slot gives
  an error that says so). In the main interpreter it traces every context
  there.
  """
  @spec tracemalloc_start(pos_integer, keyword) :: :ok | {:error, Py.Error.t()}
  def tracemalloc_start(frames \\ 1, opts \\ [])

  def tracemalloc_start(frames, opts) when is_integer(frames) and frames > 0 do
    with {:ok, _} <- Py.call(:erlang, :_tracemalloc_start, [frames], opts), do: :ok
  end

  def tracemalloc_start(frames, _opts) do
    raise ArgumentError,
          "Py.Memory.tracemalloc_start/2: frames must be a positive integer, got: #{inspect(frames)}"
  end

  @doc "Stops tracing allocations and frees the traces."
  @spec tracemalloc_stop(keyword) :: :ok | {:error, Py.Error.t()}
  def tracemalloc_stop(opts \\ []) do
    with {:ok, _} <- Py.call(:erlang, :_tracemalloc_stop, [], opts), do: :ok
  end

  @doc """
  Takes a tracemalloc snapshot and returns the places that hold the most
  memory: `%{total_bytes: n, top: [%{file: f, line: l, size: bytes, count: blocks}]}`,
  largest first.

  Options: `:top` (how many places, default 10) and `:group_by` (`:line`,
  the default, or `:file`; with `:file` every `:line` is 0). An error if
  tracemalloc is not tracing.
  """
  @spec tracemalloc_snapshot(keyword) ::
          {:ok, %{total_bytes: non_neg_integer, top: [map]}} | {:error, Py.Error.t()}
  def tracemalloc_snapshot(opts \\ []) do
    {own, call_opts} = Keyword.split(opts, [:top, :group_by])
    top = Keyword.get(own, :top, 10)

    unless is_integer(top) and top >= 0 do
      raise ArgumentError,
            "Py.Memory.tracemalloc_snapshot/1: :top must be a non-negative integer, got: #{inspect(top)}"
    end

    key_type =
      case Keyword.get(own, :group_by, :line) do
        :line ->
          "lineno"

        :file ->
          "filename"

        other ->
          raise ArgumentError,
                "Py.Memory.tracemalloc_snapshot/1: :group_by must be :line or :file, got: #{inspect(other)}"
      end

    with {:ok, {total, rows}} <- Py.call(:erlang, :_tracemalloc_top, [top, key_type], call_opts) do
      {:ok,
       %{
         total_bytes: total,
         top:
           Enum.map(rows, fn {file, line, size, count} ->
             %{file: file, line: line, size: size, count: count}
           end)
       }}
    end
  end
end
