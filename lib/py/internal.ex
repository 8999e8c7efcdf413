defmodule Py.Internal do
  @moduledoc false
  # py's own functions that Python calls through the `erlang` module
  # (`erlang.state_*`, `erlang.whereis`, `erlang.send` to a registered
  # name): served by the process waiting for the call (or the event sink for
  # threads outside calls), on the node where the caller is.

  @doc "Runs internal function `name`: `{:ok, value}` or `{:error, message}`."
  def serve("whereis", [name]) when is_binary(name) do
    {:ok, with({:ok, atom} <- existing_atom(name), do: Process.whereis(atom))}
  end

  def serve("send_named", [name, message]) when is_binary(name) do
    with {:ok, atom} <- existing_atom(name),
         pid when is_pid(pid) <- Process.whereis(atom) do
      send(pid, message)
      {:ok, nil}
    else
      _ -> {:error, "erlang.send: no process is registered as #{inspect(name)}"}
    end
  end

  def serve(name, args), do: Py.State.serve(name, args)

  # Names come from Python: never made into new atoms.
  defp existing_atom(name) do
    {:ok, String.to_existing_atom(name)}
  rescue
    ArgumentError -> nil
  end
end
