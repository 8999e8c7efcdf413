defmodule Py.ParallelTest do
  # The parallel pool: OWN_GIL sub-interpreter slots. Runs in parallel
  # builds only (see test_helper.exs). Not async: one test recreates a slot.
  use ExUnit.Case, async: false
  @moduletag :parallel

  defp interpreter_id(ctx) do
    {:ok, id} = Py.Context.eval(ctx, "__import__('_interpreters').get_current()[0]")
    id
  end

  test "mode and slots" do
    info = Py.info()
    assert info.mode == :parallel
    assert info.slots == Py.Config.parallel_slots()
  end

  test "contexts go to the slots round robin, each with its own namespace" do
    slots = Py.info().slots
    contexts = for _ <- 1..(slots + 1), do: elem(Py.Context.start_link(), 1)
    ids = Enum.map(contexts, &interpreter_id/1)
    assert ids |> Enum.take(slots) |> Enum.uniq() |> length() == slots
    assert 0 not in ids
    # The first and the last context share a slot but not their globals.
    [first | _] = contexts
    last = List.last(contexts)
    assert interpreter_id(first) == interpreter_id(last)
    :ok = Py.Context.exec(first, "mine = 'first'")
    assert {:error, %Py.Error{type: "NameError"}} = Py.Context.eval(last, "mine")
  end

  test "standard modules import in every slot" do
    code = """
    import json, decimal, datetime, re, hashlib, sqlite3, math
    result = [
        json.dumps({"a": 1}),
        str(decimal.Decimal("1.1") + 1),
        datetime.date(2024, 1, 2).isoformat(),
        re.sub("a", "b", "aa"),
        hashlib.sha256(b"x").hexdigest()[:8],
        sqlite3.connect(":memory:").execute("select 40 + 2").fetchone()[0],
        math.factorial(5),
    ]
    """

    for _ <- 1..Py.info().slots do
      {:ok, ctx} = Py.Context.start_link()
      :ok = Py.Context.exec(ctx, code)

      assert Py.Context.eval(ctx, "result") ==
               {:ok, [~s({"a": 1}), "2.1", "2024-01-02", "bb", "2d711642", 42, 120]}
    end
  end

  @tag :numpy
  test "numpy in a slot names the module and the way out; it works on a main context" do
    {:ok, slot_ctx} = Py.Context.start_link()

    assert {:error, %Py.Error{type: "ImportError", message: msg}} =
             Py.Context.eval(slot_ctx, "__import__('numpy')")

    assert msg =~ "the module numpy does not support sub-interpreters"
    assert msg =~ "interpreter: :main"

    {:ok, main_ctx} = Py.Context.start_link(interpreter: :main)
    assert Py.Context.eval(main_ctx, "int(__import__('numpy').ones(3).sum())") == {:ok, 3}
  end

  test "an object from one interpreter used in another is a clear error" do
    {:ok, slot_ctx} = Py.Context.start_link()
    {:ok, main_ctx} = Py.Context.start_link(interpreter: :main)
    {:ok, obj} = Py.Context.eval(slot_ctx, "object()", %{}, return: :object)

    assert {:error, %Py.Error{kind: :conversion, message: msg}} =
             Py.Context.eval(main_ctx, "o", %{o: obj})

    assert msg =~ "lives in another Python interpreter"
    # It still works where it lives, and inspect finds its interpreter.
    assert {:ok, true} = Py.Context.eval(slot_ctx, "o is not None", %{o: obj})
    assert inspect(obj) =~ "#Py.Object<<object object at"
  end

  test "a timeout interrupts Python in a slot and the slot goes on" do
    {:ok, ctx} = Py.Context.start_link()

    assert {:error, %Py.Error{kind: :timeout}} =
             Py.Context.exec(ctx, "while True: pass", timeout: 300)

    assert Py.Context.eval(ctx, "6 * 7") == {:ok, 42}
  end

  test "slots can be ended and re-created; their modules import again" do
    {:ok, before} = Py.Context.start_link()
    :ok = Py.Context.exec(before, "import json, decimal, datetime")

    for index <- 0..(Py.info().slots - 1) do
      assert Py.Native.slot_recreate(index) == :ok
    end

    # A context whose slot went goes on with a fresh native context (its
    # globals are gone), and says so.
    log =
      ExUnit.CaptureLog.capture_log(fn ->
        assert Py.Context.eval(before, "1") == {:ok, 1}
        assert {:error, %Py.Error{type: "NameError"}} = Py.Context.eval(before, "json")
      end)

    assert log =~ "its Python globals are lost"

    for _ <- 1..Py.info().slots do
      {:ok, ctx} = Py.Context.start_link()
      :ok = Py.Context.exec(ctx, "import json, decimal, datetime")
      assert Py.Context.eval(ctx, "str(decimal.Decimal('0.5') * 2)") == {:ok, "1.0"}
    end

    # The pool's contexts were closed with their slots; the pool heals:
    # calls from fresh processes succeed (each retried once if needed).
    for _ <- 1..3 do
      results = for _ <- 1..20, do: Task.async(fn -> Py.eval("1 + 1") end)
      assert Enum.map(results, &Task.await/1) == List.duplicate({:ok, 2}, 20)
    end
  end
end
