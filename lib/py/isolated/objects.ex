defmodule Py.Isolated.Objects do
  @moduledoc false
  # `%Py.Object{}` handles across the boundary of an isolated or remote
  # context. A native handle cannot leave its node, so:
  #
  #   * on the node that runs the context, each object in a reply is kept
  #     in the holder's table under an id, and the reply carries
  #     `{@marker, id, type}` instead;
  #   * on the origin, the marker becomes a `%Py.Object{}` whose ref is a
  #     native handle naming the owner, the generation and the id
  #     (`Py.Native.remote_object_new/3`); when the BEAM frees it, the
  #     owner hears of it and the holder drops the object;
  #   * a handle passed back in a request travels as `{@marker, id}` and
  #     is looked up again in the table.
  #
  # The holder also keeps the context: it ends it, and everything it holds,
  # when the owner on the origin goes.

  @marker :"$py_isolated_object"

  # ------------------------------------------------ the context's node

  @doc "Starts the holder for `context` on this node, tied to `owner`."
  def start_holder(owner, context) do
    parent = self()

    pid =
      spawn(fn ->
        table = :ets.new(__MODULE__, [:public, :set, read_concurrency: true])
        send(parent, {self(), :table, table})
        Process.monitor(owner)
        hold(context, table)
      end)

    receive do
      {^pid, :table, table} -> {pid, table}
    end
  end

  defp hold(context, table) do
    receive do
      {:release, ids} ->
        Enum.each(ids, &:ets.delete(table, &1))
        hold(context, table)

      {:DOWN, _, _, _, _} ->
        Py.Context.stop(context)
    end
  end

  @doc "A reply with each `%Py.Object{}` kept in `table` and replaced by a marker."
  def export(term, table) do
    walk(term, fn %Py.Object{type: type} = object ->
      id = :erlang.unique_integer([:positive])
      :ets.insert(table, {id, object})
      {@marker, id, type}
    end)
  end

  @doc "A request with each `{@marker, id}` replaced by its object from `table`."
  def resolve(term, table) do
    walk_markers(term, fn id ->
      case :ets.lookup(table, id) do
        [{_, object}] -> object
        [] -> throw({:py_isolated_object, :gone})
      end
    end)
  end

  # ------------------------------------------------------- the origin

  @doc """
  A reply with each marker turned into a `%Py.Object{}` on this node for
  the isolated context `owner` in `generation`.
  """
  def import(term, owner, generation) do
    walk_markers(term, fn
      {id, type} ->
        %Py.Object{ref: Py.Native.remote_object_new(owner, generation, id), type: type}
    end)
  end

  @doc """
  A request with each handle of the isolated context `owner` (in
  `generation`) replaced by its marker; a handle of another isolated
  context, or of an earlier generation of this one, throws.
  """
  def outbound(term, owner, generation) do
    walk(term, fn
      %module{} when module in [Py.Channel, Py.Buffer] ->
        throw({:py_isolated_object, :local_only})

      %Py.Object{ref: ref} = object ->
        case info(ref) do
          {^owner, ^generation, id} -> {@marker, id}
          {^owner, _old, _id} -> throw({:py_isolated_object, :restarted})
          {_other, _generation, _id} -> throw({:py_isolated_object, :elsewhere})
          nil -> object
        end
    end)
  end

  @doc "`{owner, generation, id}` of an isolated context's handle, or nil."
  def info(ref) when is_reference(ref), do: Py.Native.remote_object_info(ref)
  def info(_), do: nil

  @doc "The owner of an isolated context's object, or nil for any other term."
  def owner(%Py.Object{ref: ref}) do
    case info(ref) do
      {owner, _generation, _id} -> owner
      nil -> nil
    end
  end

  def owner(_), do: nil

  # ------------------------------------------------------------ walks

  # Every %Py.Object{} (and channel and buffer) in lists, tuples and maps
  # (keys and values).
  defp walk(%Py.Object{} = object, fun), do: fun.(object)
  defp walk(%module{} = local, fun) when module in [Py.Channel, Py.Buffer], do: fun.(local)
  defp walk(list, fun) when is_list(list), do: walk_list(list, fun)

  defp walk(tuple, fun) when is_tuple(tuple),
    do: tuple |> Tuple.to_list() |> walk_list(fun) |> List.to_tuple()

  defp walk(%_{} = struct, _fun), do: struct

  defp walk(map, fun) when is_map(map),
    do: Map.new(map, fn {key, value} -> {walk(key, fun), walk(value, fun)} end)

  defp walk(other, _fun), do: other

  # Improper lists keep their tail.
  defp walk_list([head | tail], fun), do: [walk(head, fun) | walk_list(tail, fun)]
  defp walk_list([], _fun), do: []
  defp walk_list(tail, fun), do: walk(tail, fun)

  defp walk_markers({@marker, id, type}, fun) when is_integer(id), do: fun.({id, type})
  defp walk_markers({@marker, id}, fun) when is_integer(id), do: fun.(id)
  defp walk_markers(list, fun) when is_list(list), do: walk_markers_list(list, fun)

  defp walk_markers(tuple, fun) when is_tuple(tuple),
    do: tuple |> Tuple.to_list() |> walk_markers_list(fun) |> List.to_tuple()

  defp walk_markers(%_{} = struct, _fun), do: struct

  defp walk_markers(map, fun) when is_map(map),
    do: Map.new(map, fn {key, value} -> {walk_markers(key, fun), walk_markers(value, fun)} end)

  defp walk_markers(other, _fun), do: other

  defp walk_markers_list([head | tail], fun),
    do: [walk_markers(head, fun) | walk_markers_list(tail, fun)]

  defp walk_markers_list([], _fun), do: []
  defp walk_markers_list(tail, fun), do: walk_markers(tail, fun)
end
