defmodule Py.Test.ForwardingGL do
  @moduledoc false
  # A group leader that answers io requests and forwards their text to a
  # test process as `{:gl_output, text}`: for output that arrives after a
  # call has returned (capture_io has stopped listening by then).

  @doc "Starts one that forwards to `to` (linked to the caller)."
  def start_link(to) do
    spawn_link(fn -> loop(to) end)
  end

  defp loop(to) do
    receive do
      {:io_request, from, ref, {:put_chars, :unicode, text}} ->
        send(to, {:gl_output, IO.chardata_to_string(text)})
        send(from, {:io_reply, ref, :ok})

      {:io_request, from, ref, _other} ->
        send(from, {:io_reply, ref, {:error, :request}})
    end

    loop(to)
  end
end
