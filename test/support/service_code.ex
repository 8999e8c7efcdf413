defmodule Py.Test.ServiceCode do
  @moduledoc false
  # Python shared by the service tests: an asyncio echo server that tells
  # `me` its port, and the names of the service threads alive.

  def code do
    """
    import asyncio, erlang, threading

    async def echo_server(me):
        async def client(reader, writer):
            while True:
                data = await reader.read(1024)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(client, "127.0.0.1", 0)
        erlang.send(me, ("listening", server.sockets[0].getsockname()[1]))
        async with server:
            await server.serve_forever()

    def service_threads():
        return sorted(t.name for t in threading.enumerate() if t.name.startswith("py-service-"))
    """
  end
end
