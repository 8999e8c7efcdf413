defmodule Py.BufferTest do
  # Py.Buffer: Elixir writes, Python reads like a binary file. In the
  # py313-parallel lane the pool's contexts are OWN_GIL sub-interpreters,
  # so every test here also runs there.
  use ExUnit.Case, async: true
  doctest Py.Buffer

  defp buffer_with(chunks, opts \\ []) do
    buf = Py.Buffer.new(opts)
    for chunk <- chunks, do: :ok = Py.Buffer.write(buf, chunk)
    buf
  end

  defp closed_buffer_with(chunks) do
    buf = buffer_with(chunks)
    :ok = Py.Buffer.close(buf)
    buf
  end

  defp eval(code, buf), do: Py.eval(code, %{"buf" => buf})

  # Runs `code` in a new process after it told us it is about to read.
  defp reader(code, buf) do
    me = self()

    Task.async(fn ->
      Py.eval("(__import__('erlang').send(pid, 'waiting'), #{code})[1]", %{
        "buf" => buf,
        "pid" => me
      })
    end)
  end

  test "read(n) reads across written chunks; read() reads to the end; then b''" do
    buf = closed_buffer_with(["ab", "cde", "", "f", String.duplicate("g", 100)])
    code = "(buf.read(4), buf.read(0), buf.read(3), buf.read(), buf.read(), buf.read(5))"
    assert eval(code, buf) == {:ok, {"abcd", "", "efg", String.duplicate("g", 99), "", ""}}
  end

  test "bytes that are not UTF-8 come back as they are" do
    buf = closed_buffer_with([<<0, 255, 1>>, <<254>>])
    assert eval("buf.read()", buf) == {:ok, <<0, 255, 1, 254>>}
    assert eval("type(buf.read()).__name__", buf) == {:ok, "bytes"}
  end

  test "readline, iteration by line and readlines, with lines split across writes" do
    buf = closed_buffer_with(["one\ntw", "o\n", "thr", "ee\nfour"])

    assert eval("(buf.readline(), buf.readline(2), list(buf))", buf) ==
             {:ok, {"one\n", "tw", ["o\n", "three\n", "four"]}}

    buf = closed_buffer_with(["a\nb\n", "c\n"])
    assert eval("buf.readlines()", buf) == {:ok, ["a\n", "b\n", "c\n"]}
  end

  test "readinto fills a bytearray; fewer bytes only at the end" do
    buf = closed_buffer_with(["hello ", "world"])

    code = """
    (lambda b: (buf.readinto(b), bytes(b), buf.readinto(b), bytes(b[:4])))(bytearray(8))
    """

    assert eval(String.trim(code), buf) == {:ok, {8, "hello wo", 3, "rldl"}}
  end

  test "read1 returns what is there without waiting for more" do
    buf = buffer_with(["abc"])
    assert eval("buf.read1(10)", buf) == {:ok, "abc"}
  end

  test "reads block until enough bytes arrive or the buffer is closed" do
    buf = Py.Buffer.new()
    task = reader("(buf.read(5), buf.readline(), buf.read())", buf)
    assert_receive "waiting", 5_000
    :ok = Py.Buffer.write(buf, "ab")
    :ok = Py.Buffer.write(buf, "cdeline")
    :ok = Py.Buffer.write(buf, " end\nrest")
    :ok = Py.Buffer.close(buf)
    assert Task.await(task) == {:ok, {"abcde", "line end\n", "rest"}}
  end

  test "readline waits for the end of a line written in many pieces; limits still apply" do
    buf = Py.Buffer.new()
    task = reader("(buf.readline(), buf.readline(5), buf.readline(), buf.readline())", buf)
    assert_receive "waiting", 5_000

    for piece <- ["aa", "bb", "cc", "\nfirst", "second\n", "x"],
        do: :ok = Py.Buffer.write(buf, piece)

    :ok = Py.Buffer.close(buf)
    assert Task.await(task) == {:ok, {"aabbcc\n", "first", "second\n", "x"}}
  end

  test "read and readline match io.BytesIO on the same bytes, written while Python reads" do
    :rand.seed(:exsss, {1, 2, 3})

    chunks =
      for _ <- 1..300 do
        for(_ <- 1..:rand.uniform(40), into: "", do: <<Enum.random(~c"ab\n")>>)
      end

    data = IO.iodata_to_binary(chunks)
    buf = Py.Buffer.new()

    task =
      Task.async(fn ->
        Py.exec!("""
        import io, random
        def compare(buf, data, seed):
            data = data.encode() if isinstance(data, str) else data
            rng = random.Random(seed)
            ref = io.BytesIO(data)
            steps = 0
            while ref.tell() < len(data) or steps == 0:
                op, k = rng.randrange(3), rng.randrange(0, 40)
                if op == 0:
                    got, want = buf.readline(), ref.readline()
                elif op == 1:
                    got, want = buf.readline(k), ref.readline(k)
                else:
                    got, want = buf.read(k), ref.read(k)
                if got != want:
                    return (steps, op, k, got, want)
                steps += 1
            return (buf.read(), steps > 0)
        """)

        Py.eval("compare(buf, data, 7)", %{"buf" => buf, "data" => data})
      end)

    for chunk <- chunks, do: :ok = Py.Buffer.write(buf, chunk)
    :ok = Py.Buffer.close(buf)
    assert Task.await(task) == {:ok, {"", true}}
  end

  test "memoryviews share the written bytes: read-only, pinned, one chunk each" do
    big = :crypto.strong_rand_bytes(1000)
    buf = closed_buffer_with([big, "tail"])

    task =
      Task.async(fn ->
        Py.exec!("""
        def views_report(buf):
            v = buf.read_view(10)
            w = buf.read_view()          # the rest of the first chunk only
            rest = list(buf.views())     # then each chunk in turn
            try:
                v[0] = 0
                writable = True
            except TypeError:
                writable = False
            return (type(v.obj).__name__, v.readonly, writable, bytes(v), len(w),
                    bytes(w), [bytes(x) for x in rest], bytes(buf.read_view()))
        """)

        Py.eval("views_report(buf)", %{"buf" => buf})
      end)

    <<first::binary-size(10), second::binary>> = big

    assert Task.await(task) ==
             {:ok, {"_ChunkPin", true, false, first, 990, second, ["tail"], ""}}
  end

  @tag :numpy
  test "views are not copies: one binary written twice gives two views of the same bytes" do
    # numpy refuses sub-interpreters: a main-interpreter context.
    {:ok, ctx} = Py.Context.start_link(interpreter: :main)
    big = :crypto.strong_rand_bytes(1000)
    buf = closed_buffer_with([big, big])

    code = """
    (lambda np, a, b: (
        len(a), len(b),
        np.frombuffer(a, np.uint8).ctypes.data == np.frombuffer(b, np.uint8).ctypes.data,
    ))(__import__('numpy'), buf.read_view(), buf.read_view())
    """

    assert Py.Context.eval(ctx, String.trim(code), %{"buf" => buf}) == {:ok, {1000, 1000, true}}
  end

  test "a memoryview outlives the buffer and the reads after it" do
    task =
      Task.async(fn ->
        buf = closed_buffer_with([String.duplicate("x", 500), "more"])

        Py.exec!("""
        def keep(buf):
            global kept
            kept = buf.read_view()
            buf.read()
            buf.close()
        """)

        {:ok, nil} = Py.eval("keep(buf)", %{"buf" => buf})
        :erlang.garbage_collect()
        Py.eval("(__import__('gc').collect(), bytes(kept) == b'x' * 500)[1]")
      end)

    assert Task.await(task) == {:ok, true}
  end

  test "100 MiB streamed through a buffer into hashlib gives Elixir's digest" do
    chunks = for _ <- 1..100, do: :crypto.strong_rand_bytes(1024 * 1024)
    expected = :crypto.hash(:sha256, chunks)
    buf = Py.Buffer.new()

    task =
      Task.async(fn ->
        Py.exec!("""
        import hashlib
        def digest(buf):
            h = hashlib.sha256()
            total = 0
            for view in buf.views():
                h.update(view)
                total += len(view)
            return h.digest(), total
        """)

        Py.eval("digest(buf)", %{"buf" => buf}, timeout: 120_000)
      end)

    for chunk <- chunks, do: :ok = Py.Buffer.write(buf, chunk)
    :ok = Py.Buffer.close(buf)
    assert Task.await(task, 120_000) == {:ok, {expected, 100 * 1024 * 1024}}
  end

  # hashlib.file_digest is Python 3.11+; on 3.10 the same readinto loop.
  @digest """
  import hashlib

  def digest(buf):
      if hasattr(hashlib, "file_digest"):
          return hashlib.file_digest(buf, "sha256").digest()
      h, chunk = hashlib.sha256(), bytearray(2**18)
      view = memoryview(chunk)
      while n := buf.readinto(chunk):
          h.update(view[:n])
      return h.digest()
  """

  test "hashlib.file_digest reads the buffer through readinto" do
    chunks = for size <- [1, 1000, 70_000, 3, 300_000, 5], do: :crypto.strong_rand_bytes(size)
    buf = Py.Buffer.new()

    task =
      Task.async(fn ->
        :ok = Py.exec(@digest)
        Py.eval("digest(buf)", %{"buf" => buf})
      end)

    for chunk <- chunks, do: :ok = Py.Buffer.write(buf, chunk)
    :ok = Py.Buffer.close(buf)
    assert Task.await(task) == {:ok, :crypto.hash(:sha256, chunks)}
  end

  test "a bounded buffer refuses writes while max_size bytes wait" do
    buf = Py.Buffer.new(max_size: 10)
    assert Py.Buffer.write(buf, "12345") == :ok
    assert Py.Buffer.write(buf, "6789012") == :ok
    assert Py.Buffer.write(buf, "x") == {:error, :full}
    assert eval("buf.read(8)", buf) == {:ok, "12345678"}
    assert Py.Buffer.write(buf, "x") == :ok
    :ok = Py.Buffer.close(buf)
    assert eval("buf.read()", buf) == {:ok, "9012x"}
  end

  # Writes `data` in `size`-byte pieces. A bounded buffer refuses a piece
  # until Python has read enough: retried (with a short back-off) until a
  # bounded deadline, so a reader that never makes room fails the test.
  defp write_in_pieces(buf, data, size) do
    deadline = System.monotonic_time(:millisecond) + 10_000

    for i <- 0..(div(byte_size(data), size) - 1)//1 do
      :ok = write_when_room(buf, binary_part(data, i * size, size), deadline)
    end

    :ok
  end

  defp write_when_room(buf, piece, deadline) do
    case Py.Buffer.write(buf, piece) do
      {:error, :full} ->
        if System.monotonic_time(:millisecond) > deadline,
          do: flunk("the reader never made room in the buffer")

        Process.sleep(1)
        write_when_room(buf, piece, deadline)

      other ->
        other
    end
  end

  test "reads larger than max_size get all their bytes (read(n), readline, read())" do
    buf = Py.Buffer.new(max_size: 8)
    first = String.duplicate("abcdefghij", 6)
    line = String.duplicate("L", 29) <> "\n"
    rest = String.duplicate("r", 25)
    task = Task.async(fn -> eval("(buf.read(60), buf.readline(), buf.read())", buf) end)
    :ok = write_in_pieces(buf, first <> line <> rest, 5)
    :ok = Py.Buffer.close(buf)
    assert Task.await(task) == {:ok, {first, line, rest}}
  end

  test "hashlib.file_digest over a buffer whose max_size is smaller than its reads" do
    chunks = for _ <- 1..64, do: :crypto.strong_rand_bytes(16_384)
    buf = Py.Buffer.new(max_size: 65_536)

    task =
      Task.async(fn ->
        :ok = Py.exec(@digest)
        Py.eval("digest(buf)", %{"buf" => buf})
      end)

    :ok = write_in_pieces(buf, IO.iodata_to_binary(chunks), 16_384)
    :ok = Py.Buffer.close(buf)
    assert Task.await(task) == {:ok, :crypto.hash(:sha256, chunks)}
  end

  test "a read larger than max_size that is cancelled leaves the bytes it held" do
    buf = Py.Buffer.new(max_size: 8)
    {:ok, ctx} = Py.Context.start()
    task = Task.async(fn -> Py.Context.eval(ctx, "buf.read(100)", %{"buf" => buf}) end)
    :ok = Py.Buffer.write(buf, "abcdefgh")
    # Accepted only once the read has taken the first 8 bytes to make room.
    deadline = System.monotonic_time(:millisecond) + 10_000
    :ok = write_when_room(buf, "ijkl", deadline)
    :ok = Py.Context.stop(ctx)
    assert {:error, %Py.Error{kind: :closed}} = Task.await(task)
    # Whenever the cancelled read puts its bytes back, they come first.
    assert Py.eval("buf.read(12)", %{"buf" => buf}, timeout: 5_000) == {:ok, "abcdefghijkl"}
  end

  test "after Elixir closes, writes fail; after Python closes, reads fail and writes too" do
    buf = closed_buffer_with(["a"])
    assert Py.Buffer.write(buf, "b") == {:error, :closed}
    assert Py.Buffer.close(buf) == :ok

    buf = buffer_with(["unread"])
    assert eval("(buf.close(), buf.closed)[1]", buf) == {:ok, true}
    assert Py.Buffer.write(buf, "more") == {:error, :closed}
    assert {:error, %Py.Error{type: "ValueError"}} = eval("buf.read()", buf)
  end

  test "a timeout interrupts Python blocked in read, and the context stays usable" do
    {:ok, ctx} = Py.Context.start_link()
    buf = Py.Buffer.new()

    assert {:error, %Py.Error{kind: :timeout}} =
             Py.Context.eval(ctx, "buf.read(1)", %{"buf" => buf}, timeout: 200)

    assert Py.Context.eval(ctx, "1 + 1") == {:ok, 2}
    :ok = Py.Buffer.write(buf, "z")
    assert Py.Context.eval(ctx, "buf.read(1)", %{"buf" => buf}) == {:ok, "z"}
  end

  test "the owner's exit ends the data: Python reads what was written, then the end" do
    test = self()

    owner =
      spawn(fn ->
        buf = Py.Buffer.new()
        send(test, {:buffer, buf})

        receive do
          :go -> :ok = Py.Buffer.write(buf, "partial")
        end
      end)

    assert_receive {:buffer, buf}
    ref = Process.monitor(owner)
    task = reader("buf.read()", buf)
    assert_receive "waiting", 5_000
    send(owner, :go)
    assert_receive {:DOWN, ^ref, :process, ^owner, :normal}
    assert Task.await(task) == {:ok, "partial"}
  end

  test "iodata is accepted; other terms raise ArgumentError" do
    buf = Py.Buffer.new()
    assert Py.Buffer.write(buf, ["ab", ?c, ["de"]]) == :ok
    :ok = Py.Buffer.close(buf)
    assert eval("buf.read()", buf) == {:ok, "abcde"}

    assert_raise ArgumentError, ~r/binary or iodata/, fn -> Py.Buffer.write(buf, 42) end
    assert_raise ArgumentError, ~r/binary or iodata/, fn -> Py.Buffer.write(buf, <<1::3>>) end
    assert_raise ArgumentError, ~r/binary or iodata/, fn -> Py.Buffer.write(buf, [:a]) end
    assert_raise ArgumentError, ~r/Py.Buffer/, fn -> Py.Buffer.write(:nope, "a") end
    assert_raise ArgumentError, ~r/max_size/, fn -> Py.Buffer.new(max_size: -1) end
  end

  test "it is a binary file object to Python" do
    buf = closed_buffer_with(["x"])

    assert eval(
             "(isinstance(buf, __import__('io').BufferedIOBase), buf.readable(), repr(buf))",
             buf
           ) ==
             {:ok, {true, true, "<erlang.Buffer buffered=1 eof>"}}
  end

  @tag :parallel
  test "a buffer read in a sub-interpreter slot and on a main context in a parallel build" do
    {:ok, slot_ctx} = Py.Context.start_link()
    {:ok, main_ctx} = Py.Context.start_link(interpreter: :main)
    buf = closed_buffer_with([String.duplicate("a", 100), String.duplicate("b", 100)])

    assert Py.Context.eval(slot_ctx, "bytes(buf.read_view())", %{"buf" => buf}) ==
             {:ok, String.duplicate("a", 100)}

    assert Py.Context.eval(main_ctx, "bytes(buf.read_view())", %{"buf" => buf}) ==
             {:ok, String.duplicate("b", 100)}
  end
end
