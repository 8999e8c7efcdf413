defmodule Py.ObjectInspectTest do
  # Not async: inspect gives up on a busy owner after 250 ms, so the
  # objects here live on contexts of their own (`interpreter: :main` gives
  # a context a thread of its own in every build), with nothing else
  # running. The callback and output tests wait for the repr as long as it
  # takes (`owner_repr/2` is what `inspect/2` runs, with its timeout).
  use ExUnit.Case, async: false

  @patience 30_000

  setup do
    {:ok, ctx} = Py.Context.start_link(interpreter: :main)
    %{ctx: ctx}
  end

  import ExUnit.CaptureIO

  test "a __repr__ that calls back into Elixir is served", %{ctx: ctx} do
    name = "inspect_test_label_#{System.unique_integer([:positive])}"
    Py.register_function(name, fn -> "from Elixir" end)
    on_exit(fn -> Py.unregister_function(name) end)

    {:ok, obj} =
      Py.Context.eval(
        ctx,
        "type('Labelled', (), {'__repr__': lambda self: __import__('erlang').call(n)})()",
        %{n: name},
        return: :object
      )

    assert Py.Object.owner_repr(obj, @patience) == {:ok, "from Elixir"}
    assert {:messages, []} = Process.info(self(), :messages)
  end

  test "a __repr__ that reads shared state (an internal callback) is served", %{ctx: ctx} do
    key = "inspect_test_#{System.unique_integer([:positive])}"
    Py.State.put(key, "stateful")
    on_exit(fn -> Py.State.delete(key) end)

    {:ok, obj} =
      Py.Context.eval(
        ctx,
        "type('S', (), {'__repr__': lambda self: __import__('erlang').state_get(k)})()",
        %{k: key},
        return: :object
      )

    assert Py.Object.owner_repr(obj, @patience) == {:ok, "stateful"}
    assert {:messages, []} = Process.info(self(), :messages)
  end

  test "output of a __repr__ is complete on return and leaves no io replies behind",
       %{ctx: ctx} do
    {:ok, obj} =
      Py.Context.eval(
        ctx,
        "type('Loud', (), {'__repr__': lambda self: print('repr ran') or 'loud'})()",
        %{},
        return: :object
      )

    output =
      capture_io(fn ->
        assert Py.Object.owner_repr(obj, @patience) == {:ok, "loud"}
        assert {:messages, []} = Process.info(self(), :messages)
      end)

    assert output == "repr ran\n"
  end

  test "a busy owner gives the type at once, without waiting for the owner", %{ctx: ctx} do
    {:ok, obj} = Py.Context.eval(ctx, "object()", %{}, return: :object)
    test = self()
    name = "inspect_test_busy_#{System.unique_integer([:positive])}"
    Py.register_function(name, fn -> send(test, :busy) end)
    on_exit(fn -> Py.unregister_function(name) end)

    # The owner is busy for 2 s. An inspect that waited for it (as it did,
    # up to 5 s) would then get the full repr.
    busy =
      Task.async(fn ->
        Py.Context.exec(ctx, "__import__('erlang').call(#{inspect(name)})\nwhile True: pass",
          timeout: 2_000
        )
      end)

    assert_receive :busy, 5_000
    assert inspect([obj, obj]) == "[#Py.Object<object>, #Py.Object<object>]"
    assert {:error, %Py.Error{kind: :timeout}} = Task.await(busy, 10_000)
    assert {:messages, []} = Process.info(self(), :messages)
    assert {:ok, "<object object at" <> _} = Py.Object.owner_repr(obj, @patience)
  end

  test "a handle that is not live inspects as released, at once, never recursing", %{ctx: ctx} do
    before = Py.Object.live_count()

    # The only live copy dies with the task; the binary keeps a stale copy.
    binary =
      Task.async(fn ->
        {:ok, obj} = Py.Context.eval(ctx, "object()", %{}, return: :object)
        :erlang.term_to_binary(obj)
      end)
      |> Task.await()

    assert Py.Object.await_live_count(before)
    stale = :erlang.binary_to_term(binary)

    # Before the fix the repr process crashed and its crash report
    # inspected the object again, forever: these never returned.
    inspected =
      Task.async(fn ->
        [
          inspect(stale),
          inspect(%Py.Object{ref: nil, type: "int"}),
          inspect(%Py.Object{ref: make_ref(), type: "int"}),
          inspect(%Py.Object{ref: :not_a_ref, type: nil}),
          inspect(%{stale | type: nil})
        ]
      end)
      |> Task.await(@patience)

    assert inspected == [
             "#Py.Object<released object>",
             "#Py.Object<released int>",
             "#Py.Object<released int>",
             "#Py.Object<released>",
             "#Py.Object<released>"
           ]

    for bad <- [stale, %Py.Object{ref: nil, type: "int"}] do
      assert {:error, %Py.Error{kind: :conversion}} = Py.repr(bad)
      assert {:error, %Py.Error{kind: :conversion}} = Py.Object.owner_repr(bad, @patience)
    end

    assert {:messages, []} = Process.info(self(), :messages)
  end
end
