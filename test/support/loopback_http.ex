defmodule Py.Test.LoopbackHTTP do
  @moduledoc false
  # A tiny HTTP server on 127.0.0.1 for the packaging tests: serves the
  # files of one directory (by base name; 404 otherwise), one request per
  # connection, and counts the requests it answered.

  defstruct [:url, :pid, :counter]

  @doc "Starts a server for `dir` on a free loopback port."
  def start(dir) do
    parent = self()
    counter = :counters.new(1, [])

    pid =
      spawn(fn ->
        opts = [:binary, ip: {127, 0, 0, 1}, packet: :http_bin, active: false, reuseaddr: true]
        {:ok, listen} = :gen_tcp.listen(0, opts)
        {:ok, port} = :inet.port(listen)
        send(parent, {self(), :listening, port})
        accept_loop(listen, dir, counter)
      end)

    receive do
      {^pid, :listening, port} ->
        %__MODULE__{url: "http://127.0.0.1:#{port}", pid: pid, counter: counter}
    end
  end

  @doc "How many requests the server answered."
  def requests(%__MODULE__{counter: counter}), do: :counters.get(counter, 1)

  @doc "Stops the server: the port refuses connections afterwards."
  def stop(%__MODULE__{pid: pid}) do
    ref = Process.monitor(pid)
    Process.exit(pid, :kill)

    receive do
      {:DOWN, ^ref, _, _, _} -> :ok
    end
  end

  defp accept_loop(listen, dir, counter) do
    {:ok, socket} = :gen_tcp.accept(listen)
    serve(socket, dir, counter)
    accept_loop(listen, dir, counter)
  end

  defp serve(socket, dir, counter) do
    with {:ok, {:http_request, _method, {:abs_path, path}, _version}} <-
           :gen_tcp.recv(socket, 0, 10_000),
         :ok <- skip_headers(socket) do
      :counters.add(counter, 1, 1)
      file = Path.join(dir, path |> URI.decode() |> Path.basename())

      {status, body} =
        case File.read(file) do
          {:ok, body} -> {"200 OK", body}
          {:error, _} -> {"404 Not Found", "not found\n"}
        end

      :ok = :inet.setopts(socket, packet: :raw)

      :gen_tcp.send(socket, [
        "HTTP/1.1 #{status}\r\ncontent-type: application/octet-stream\r\n",
        "content-length: #{byte_size(body)}\r\nconnection: close\r\n\r\n",
        body
      ])
    end

    :gen_tcp.close(socket)
  end

  defp skip_headers(socket) do
    case :gen_tcp.recv(socket, 0, 10_000) do
      {:ok, :http_eoh} -> :ok
      {:ok, {:http_header, _, _, _, _}} -> skip_headers(socket)
      other -> {:error, other}
    end
  end
end
