defmodule Py.ConversionTest do
  use ExUnit.Case, async: true

  # Sends `value` to Python and back; also returns Python's type name for it.
  defp round_trip(value) do
    {:ok, back} = Py.eval("v", %{v: value})
    {:ok, type} = Py.eval("type(v).__name__", %{v: value})
    {back, type}
  end

  test "nil, booleans" do
    assert round_trip(nil) == {nil, "NoneType"}
    assert round_trip(true) == {true, "bool"}
    assert round_trip(false) == {false, "bool"}
  end

  test "integers of any size, negative too" do
    for n <- [
          0,
          1,
          -1,
          2 ** 62,
          -(2 ** 63),
          2 ** 64,
          Integer.pow(2, 4096),
          -Integer.pow(2, 4096) + 7
        ] do
      assert round_trip(n) == {n, "int"}
    end

    assert Py.eval("2 ** 4096") == {:ok, Integer.pow(2, 4096)}
    assert Py.eval("-(3 ** 2000)") == {:ok, -Integer.pow(3, 2000)}
  end

  test "floats, -0.0, nan and infinities" do
    assert round_trip(1.5) == {1.5, "float"}
    {:ok, neg_zero} = Py.eval("-0.0")
    assert <<neg_zero::float>> == <<0x80, 0, 0, 0, 0, 0, 0, 0>>
    assert Py.eval("__import__('math').copysign(1.0, v)", %{v: neg_zero}) == {:ok, -1.0}

    assert Py.eval("float('nan')") == {:ok, :nan}
    assert Py.eval("float('inf')") == {:ok, :infinity}
    assert Py.eval("float('-inf')") == {:ok, :neg_infinity}
    assert round_trip(:nan) == {:nan, "float"}
    assert round_trip(:infinity) == {:infinity, "float"}
    assert round_trip(:neg_infinity) == {:neg_infinity, "float"}
    assert Py.eval("v != v", %{v: :nan}) == {:ok, true}
  end

  test "UTF-8 binaries are str, including non-ASCII" do
    text = "héllo wörld ✓ 日本語 🐍"
    assert round_trip(text) == {text, "str"}
    assert Py.eval("len(v)", %{v: text}) == {:ok, String.length(text)}
  end

  test "binaries that are not UTF-8 are bytes; bytes and bytearray come back as binaries" do
    bin = <<255, 0, 1, 128>>
    assert round_trip(bin) == {bin, "bytes"}
    assert Py.eval("b'abc'") == {:ok, "abc"}
    assert Py.eval("bytearray(b'\\x00\\xff')") == {:ok, <<0, 255>>}
  end

  test "other atoms become str" do
    assert round_trip(:hello) == {"hello", "str"}
  end

  test "lists, tuples, maps, nested" do
    value = [1, {2, "three", [4.0]}, %{"a" => [nil, true], 5 => {}}]
    assert round_trip(value) == {value, "list"}
    assert round_trip({}) == {{}, "tuple"}
    assert round_trip([]) == {[], "list"}
    assert round_trip(%{}) == {%{}, "dict"}
  end

  # A list's ints and floats take a shorter path than its other items
  # (docs/architecture.md, "Conversion"): bools, int and float subclasses,
  # ints past 64 bits and the float specials must still come out as their
  # own kinds, in order.
  test "list items of every numeric kind, mixed, keep their kind and order" do
    code = """
    import enum
    class Level(enum.IntEnum):
        HIGH = 7
    class Money(float):
        pass
    [1, -2**63, 2**63 - 1, 2**63, -2**63 - 1, 2**70, True, False, 0,
     1.5, -0.0, float('nan'), float('inf'), float('-inf'),
     Level.HIGH, Money(2.5), None, "s", [3, 4.5]]
    """

    assert Py.eval(code) ==
             {:ok,
              [
                1,
                -9_223_372_036_854_775_808,
                9_223_372_036_854_775_807,
                9_223_372_036_854_775_808,
                -9_223_372_036_854_775_809,
                1_180_591_620_717_411_303_424,
                true,
                false,
                0,
                1.5,
                -0.0,
                :nan,
                :infinity,
                :neg_infinity,
                7,
                2.5,
                nil,
                "s",
                [3, 4.5]
              ]}

    value = [1, -9_223_372_036_854_775_808, 2 ** 70, -(2 ** 70), 1.5, true, nil, "s", [2, 3.0]]

    assert Py.eval("[type(x).__name__ for x in v]", %{v: value}) ==
             {:ok, ~w(int int int int float bool NoneType str list)}

    assert Py.eval("v", %{v: value}) == {:ok, value}
  end

  test "maps with tuple keys" do
    map = %{{1, 2} => "a", {"x", {3}} => "b"}
    assert round_trip(map) == {map, "dict"}
  end

  test "MapSet and set / frozenset" do
    set = MapSet.new([1, "a", {2, 3}])
    assert round_trip(set) == {set, "set"}
    assert Py.eval("frozenset([1, 2])") == {:ok, MapSet.new([1, 2])}
    assert Py.eval("set()") == {:ok, MapSet.new()}
  end

  # MapSet's private layout differs between Elixir versions (1.20 dropped
  # its :version field): what comes back must be what MapSet.new/1 makes here.
  test "Python sets come back as real MapSets on this Elixir" do
    assert {:ok, set} = Py.eval("{1, 'a', (2, 3), frozenset([4])}")
    assert set == MapSet.new([1, "a", {2, 3}, MapSet.new([4])])
    assert MapSet.member?(set, "a")
    assert MapSet.size(MapSet.put(set, 1)) == 4
    assert MapSet.union(set, MapSet.new([5])) == MapSet.new([1, "a", {2, 3}, MapSet.new([4]), 5])

    assert Py.eval("[set([1]), {'k': frozenset()}]") ==
             {:ok, [MapSet.new([1]), %{"k" => MapSet.new()}]}

    assert Py.eval("frozenset()") == {:ok, MapSet.new()}
  end

  test "set members that collide in Elixir are an error" do
    assert {:error, %Py.Error{kind: :conversion, message: message}} = Py.eval("{'a', b'a'}")
    assert message =~ "same Elixir term"
  end

  test "pids round-trip as erlang.Pid, hashable and comparable" do
    me = self()
    assert round_trip(me) == {me, "Pid"}
    assert Py.eval("{p: 1}[q]", %{p: me, q: me}) == {:ok, 1}
    assert Py.eval("p == q", %{p: me, q: me}) == {:ok, true}
    other = spawn(fn -> :ok end)
    assert Py.eval("p == q", %{p: me, q: other}) == {:ok, false}
    assert {:ok, repr} = Py.eval("repr(p)", %{p: me})
    assert repr =~ "erlang.Pid(<"
  end

  test "a forged erlang.Pid is rejected, not turned into a term" do
    assert {:error, %Py.Error{kind: :conversion}} =
             Py.eval("__import__('erlang').Pid(b'\\x83d\\x00\\x03abc')")
  end

  test "1 MiB binaries and 100,000-element lists" do
    bin = :crypto.strong_rand_bytes(1024 * 1024)
    assert {^bin, _} = round_trip(bin)
    list = Enum.to_list(1..100_000)
    assert round_trip(list) == {list, "list"}
    assert Py.eval("len(v)", %{v: list}) == {:ok, 100_000}
  end

  test "subclasses of the builtin types convert like the types themselves" do
    code = """
    class I(int): pass
    class F(float): pass
    class S(str): pass
    class L(list): pass
    class T(tuple): pass
    class D(dict): pass
    [I(7), F(1.5), S('s'), L([1, L([2])]), T((3, 'x')), D(a=D(b=1)), True, None, b'\\xff']
    """

    assert Py.eval(code) ==
             {:ok, [7, 1.5, "s", [1, [2]], {3, "x"}, %{"a" => %{"b" => 1}}, true, nil, <<255>>]}
  end

  test "a list that Python code empties while it converts gives what was converted, no crash" do
    # The tzinfo's utcoffset runs while the list converts (from its end)
    # and clears it; the items before it are gone by then.
    code = """
    import datetime
    items = []
    class Clearing(datetime.tzinfo):
        def utcoffset(self, dt):
            items.clear()
            return datetime.timedelta(0)
        def tzname(self, dt):
            return 'X'
        def dst(self, dt):
            return None
    items.extend([1, 2, datetime.datetime(2020, 1, 1, tzinfo=Clearing()), 4])
    items
    """

    assert {:ok, [%DateTime{year: 2020}, 4]} = Py.eval(code)
  end

  @depth 10_000

  test "values nested 10,000 deep cross both ways without overflowing the stack" do
    nested_list = Enum.reduce(1..@depth, [], fn _, acc -> [acc] end)
    nested_tuple = Enum.reduce(1..@depth, {}, fn _, acc -> {acc} end)
    nested_map = Enum.reduce(1..@depth, %{}, fn _, acc -> %{"k" => acc} end)

    depth_fun = """
    def depth(v):
        d = 0
        while v:
            v = v[0] if isinstance(v, (list, tuple)) else v["k"]
            d += 1
        return d
    """

    :ok = Py.exec(depth_fun)

    for value <- [nested_list, nested_tuple, nested_map] do
      assert Py.eval("depth(v)", %{v: value}) == {:ok, @depth}
      assert {:ok, ^value} = Py.eval("v", %{v: value})
    end

    :ok = Py.exec("deep = []\nfor _ in range(#{@depth}):\n    deep = [deep]")
    assert Py.eval("deep") == {:ok, nested_list}
  end

  test "nesting beyond the limit is a conversion error, not a crash" do
    too_deep = Enum.reduce(1..200_000, [], fn _, acc -> [acc] end)
    assert {:error, %Py.Error{kind: :conversion, message: msg}} = Py.eval("v", %{v: too_deep})
    assert msg =~ "nested deeper than"
    # The path to the failure is elided in the middle, not 10,000 steps long.
    assert msg =~ ~r/ -> \.\.\. \d+ more \.\.\. -> /
    assert byte_size(msg) < 1_000
  end

  test "values with no Python counterpart give an error naming the value" do
    assert {:error, %Py.Error{kind: :conversion, message: msg}} =
             Py.eval("v", %{v: fn -> :ok end})

    assert msg =~ "#Fun"
    assert msg =~ "no Python counterpart"

    port = Port.open({:spawn, "true"}, [])
    assert {:error, %Py.Error{kind: :conversion, message: port_msg}} = Py.eval("v", %{v: port})
    assert port_msg =~ "#Port"

    assert {:error, %Py.Error{kind: :conversion}} = Py.eval("v", %{v: make_ref()})
    assert {:error, %Py.Error{kind: :conversion, message: improper}} = Py.eval("v", %{v: [1 | 2]})
    assert improper =~ "improper list"
    assert {:error, %Py.Error{kind: :conversion, message: bits}} = Py.eval("v", %{v: <<1::3>>})
    assert bits =~ "bitstring"
  end

  test "improper lists as args, kwargs or bindings are invalid requests" do
    assert {:error, %Py.Error{kind: :invalid, message: msg}} = Py.call(:math, :sqrt, [4 | 5])
    assert msg =~ "args must be a proper list"

    assert {:error, %Py.Error{kind: :invalid, message: msg}} =
             Py.call(:math, :sqrt, [4], kwargs: [{:a, 1} | 2])

    assert msg =~ "kwargs must be a proper list"
    assert {:error, %Py.Error{kind: :invalid}} = Py.eval("x", [{:x, 1} | 3])
    assert Py.call(:math, :sqrt, [4]) == {:ok, 2.0}
  end

  test "conversion errors say where in the value they failed" do
    value = [1, 2, %{"k" => {:ok, fn -> 1 end}}]
    assert {:error, %Py.Error{message: msg}} = Py.call(:builtins, :len, [value])
    assert msg =~ ~s(argument 1 -> [2] -> value at key <<"k">> -> elem 1)

    assert {:error, %Py.Error{kind: :conversion, message: back}} =
             Py.eval("{'a': [1, '\\ud800']}")

    assert back =~ "not valid UTF-8"
    assert back =~ "value at key 'a' -> [1]"
  end

  test "large dicts and sets (beyond the small-map size) convert" do
    map = Map.new(1..5000, fn i -> {"k#{i}", i} end)
    assert round_trip(map) == {map, "dict"}
    set = MapSet.new(1..5000)
    assert round_trip(set) == {set, "set"}
  end

  test "large str-keyed dicts convert to maps equal to Elixir's own, from contexts at once" do
    # Built in one go where the VM allows it (OTP 27.3+), key by key before.
    code = "{('key%d_%d' % (i, salt)): [i, {'n': i}] for i in range(n)}"

    results =
      for salt <- 1..4 do
        Task.async(fn ->
          {:ok, ctx} = Py.Context.start_link()

          for n <- [33, 1_000, 2_500],
              do: {n, salt, Py.Context.eval(ctx, code, %{n: n, salt: salt})}
        end)
      end

    for task <- results, {n, salt, {:ok, map}} <- Task.await(task, 30_000) do
      expected = Map.new(0..(n - 1), fn i -> {"key#{i}_#{salt}", [i, %{"n" => i}]} end)
      assert map == expected
      assert map_size(map) == n
      assert Map.keys(map) == Map.keys(expected)
      assert :erlang.phash2(map) == :erlang.phash2(expected)
      assert Map.put(map, "key0_#{salt}", :x) == Map.put(expected, "key0_#{salt}", :x)
    end
  end

  test "dict keys that collide in Elixir are an error" do
    assert {:error, %Py.Error{kind: :conversion, message: small}} = Py.eval("{'a': 1, b'a': 2}")
    assert small =~ "same Elixir term"
    big = "dict([('k%d' % i, i) for i in range(100)] + [(b'k1', 0)])"
    assert {:error, %Py.Error{kind: :conversion, message: large}} = Py.eval(big)
    assert large =~ "same Elixir term"
  end

  test "Elixir keys that are one Python key are an error naming both, not a lost value" do
    assert {:error, %Py.Error{kind: :conversion, message: msg}} =
             Py.eval("v", %{v: %{:a => 1, "a" => 2}})

    assert msg =~ "same Python dict key ('a')"
    assert msg =~ ~s(<<"a">>)

    assert {:error, %Py.Error{kind: :conversion, message: msg}} =
             Py.eval("v", %{v: %{1 => :x, 1.0 => :y}})

    assert msg =~ "the map keys 1 and 1.0"

    # Nested, and in a large (hash) map.
    big = Map.new(1..100, fn i -> {"k#{i}", i} end) |> Map.put(:k7, 0)

    assert {:error, %Py.Error{kind: :conversion, message: msg}} =
             Py.call(:builtins, :len, [[big]])

    assert msg =~ "'k7'"

    assert {:error, %Py.Error{kind: :conversion, message: msg}} =
             Py.eval("v", %{v: MapSet.new([1, 1.0, true])})

    assert msg =~ "the MapSet members"
    assert msg =~ "same Python set member"

    for kwargs <- [%{"sep" => "-", :sep => "+"}, [sep: "-", sep: "+"], [{"sep", "-"}, sep: "+"]] do
      assert {:error, %Py.Error{kind: :conversion, message: msg}} =
               Py.call(:builtins, :print, ["a", "b"], kwargs: kwargs)

      assert msg =~ "the name sep is given twice"
    end

    assert {:error, %Py.Error{kind: :conversion, message: msg}} =
             Py.eval("x", %{"x" => 1, :x => 2})

    assert msg =~ "the name x is given twice"

    # No collision: all kept.
    assert Py.eval("len(v)", %{v: %{:a => 1, "b" => 2, 1 => 3, 2.5 => 4}}) == {:ok, 4}
    assert Py.eval("len(v)", %{v: MapSet.new([1, 2.5, "1", :one])}) == {:ok, 4}
  end

  test "unhashable map keys are reported" do
    assert {:error, %Py.Error{kind: :conversion, message: msg}} = Py.eval("v", %{v: %{[1] => 2}})
    assert msg =~ "cannot be a Python dict key"
  end

  test "Python objects without a counterpart come back as handles" do
    assert {:ok, %Py.Object{type: "object"}} = Py.eval("object()")

    assert {:ok, %Py.Object{type: "fractions.Fraction"}} =
             Py.eval("__import__('fractions').Fraction(1, 3)")
  end
end
