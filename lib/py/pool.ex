defmodule Py.Pool do
  @moduledoc false
  # The default pool: a supervisor of N contexts whose native handles sit in
  # a tuple in :persistent_term, so picking one costs no message.
  #
  # A process is bound to one context on its first call (see `Py`); the
  # pick keeps scheduler affinity: contexts are dealt to schedulers, and a
  # process takes one of its scheduler's contexts (round robin among them
  # when there are more contexts than schedulers).
  use Supervisor

  def start_link(opts) do
    name = Keyword.fetch!(opts, :name)
    size = Keyword.fetch!(opts, :size)
    Supervisor.start_link(__MODULE__, {name, size})
  end

  @impl true
  def init({name, size}) do
    :persistent_term.put(key(name), :erlang.make_tuple(size, nil))
    :persistent_term.put(counter_key(name), :atomics.new(1, []))

    children =
      for index <- 0..(size - 1) do
        Supervisor.child_spec({Py.Context, pool: {name, index}}, id: {Py.Context, index})
      end

    Supervisor.init(children, strategy: :one_for_one, max_restarts: 100, max_seconds: 5)
  end

  @doc false
  # Called by a pool context from its init; the supervisor starts and
  # restarts children one at a time, so updates do not race.
  def register(name, index, handle) do
    :persistent_term.put(key(name), put_elem(:persistent_term.get(key(name)), index, handle))
  end

  @doc false
  def size(name \\ :default), do: tuple_size(:persistent_term.get(key(name)))

  @doc false
  def handles(name \\ :default), do: Tuple.to_list(:persistent_term.get(key(name)))

  @doc false
  @spec pick(atom) :: {:ok, Py.Context.handle()} | {:error, Py.Error.t()}
  def pick(name \\ :default) do
    case :persistent_term.get(key(name), nil) do
      nil ->
        {:error,
         %Py.Error{
           kind: :runtime,
           message: "the py pool #{inspect(name)} is not running; is the :py application started?"
         }}

      contexts ->
        size = tuple_size(contexts)
        schedulers = :erlang.system_info(:schedulers_online)
        scheduler = rem(:erlang.system_info(:scheduler_id) - 1, schedulers)
        index = affinity_index(name, scheduler, schedulers, size)

        first_alive(contexts, index, size)
    end
  end

  # The context at `index`, or the next live one: a context that died stays
  # in the tuple until its supervisor has restarted it.
  defp first_alive(_contexts, _index, 0), do: {:error, Py.Error.closed()}

  defp first_alive(contexts, index, left) do
    case elem(contexts, index) do
      {pid, _ref} = handle when is_pid(pid) ->
        if Process.alive?(pid),
          do: {:ok, handle},
          else: first_alive(contexts, rem(index + 1, tuple_size(contexts)), left - 1)

      nil ->
        first_alive(contexts, rem(index + 1, tuple_size(contexts)), left - 1)
    end
  end

  defp affinity_index(_name, scheduler, schedulers, size) when size <= schedulers,
    do: rem(scheduler, size)

  defp affinity_index(name, scheduler, schedulers, size) do
    # Contexts scheduler, scheduler + schedulers, ... belong to this scheduler.
    own = div(size - 1 - scheduler, schedulers) + 1
    turn = :atomics.add_get(:persistent_term.get(counter_key(name)), 1, 1)
    scheduler + schedulers * rem(turn, own)
  end

  defp key(name), do: {__MODULE__, name}
  defp counter_key(name), do: {__MODULE__, name, :counter}
end
