defmodule Py.BadInputTest do
  # Not async: one test changes the :py application environment.
  use ExUnit.Case, async: false

  test "a context that is not one names itself and what to pass" do
    for bad <- [5, "ctx", {:via, :no_such_registry, :x}] do
      assert_raise ArgumentError, ~r/#{Regex.escape(inspect(bad))}/, fn ->
        Py.eval("1", %{}, context: bad)
      end

      assert_raise ArgumentError, ~r/#{Regex.escape(inspect(bad))}/, fn -> Py.bind(bad) end
    end

    assert_raise ArgumentError, ~r/a context is a Py.Context pid or the name/, fn ->
      Py.call(:math, :sqrt, [4], context: 5)
    end
  end

  test "a bad :interpreter raises in the caller of start_link, before any process starts" do
    assert_raise ArgumentError, ~r/:interpreter option must be :auto or :main, got: :foo/, fn ->
      Py.Context.start_link(interpreter: :foo)
    end
  end

  test "options given as a map are named as such" do
    for fun <- [
          fn -> Py.call(:math, :sqrt, [4], %{timeout: 100}) end,
          fn -> Py.eval("1", %{}, %{timeout: 100}) end,
          fn -> Py.exec("x = 1", %{timeout: 100}) end,
          fn -> Py.Memory.stats(%{timeout: 100}) end,
          fn -> Py.install(["six"], %{progress: false}) end,
          fn -> Py.stream(:builtins, :range, [3], %{chunk_size: 1}) end,
          fn -> Py.stream_eval("range(3)", %{}, %{chunk_size: 1}) end,
          fn -> Py.getattr(:math, :pi, %{return: :object}) end,
          fn -> Py.Channel.new(%{max_size: 1}) end,
          fn -> Py.Buffer.new(%{max_size: 1}) end
        ] do
      assert_raise ArgumentError, ~r/options must be a keyword list.*%\{/, fun
    end
  end

  test "code given as a charlist is named as a charlist" do
    assert_raise ArgumentError, ~r/charlist (~c"1\+1"|'1\+1').*double quotes/, fn ->
      Py.eval(~c"1+1")
    end

    assert_raise ArgumentError, ~r/charlist/, fn -> Py.exec(~c"x = 1") end
    assert_raise ArgumentError, ~r/takes the code as a string, got: 42/, fn -> Py.eval(42) end
  end

  test "bad routes name the bad target or pool" do
    assert_raise ArgumentError, ~r/pool, named by an atom.*"io"/, fn ->
      Py.Router.route("x", "io")
    end

    assert_raise ArgumentError, ~r/route target.*%\{\}/, fn -> Py.Router.route(%{}, :io) end
    assert_raise ArgumentError, ~r/route target.*\{1, 2\}/, fn -> Py.Router.route({1, 2}, :io) end
    assert Py.Router.routes() == %{}
  end

  test "unregister_function of a name that cannot be one says what a name is" do
    assert_raise ArgumentError, ~r/an atom or string.*\{1\}/, fn ->
      Py.unregister_function({1})
    end
  end

  test "config :py, timeout: is checked when read" do
    previous = Application.fetch_env(:py, :timeout)

    on_exit(fn ->
      case previous do
        {:ok, value} -> Application.put_env(:py, :timeout, value)
        :error -> Application.delete_env(:py, :timeout)
      end

      Py.Config.load()
    end)

    Application.put_env(:py, :timeout, "30s")

    assert_raise ArgumentError, ~r/config :py, timeout: must be .*"30s"/, fn ->
      Py.Config.load()
    end

    # The value in use is not replaced by the bad one.
    assert is_integer(Py.Config.default_timeout())

    Application.put_env(:py, :timeout, :infinity)
    Py.Config.load()
    assert Py.Config.default_timeout() == :infinity
  end

  test "Py.await/2 names a bad task or timeout" do
    assert_raise ArgumentError, ~r/Py.await\/2 takes the Task .* got: :nope/, fn ->
      Py.await(:nope)
    end

    task = Py.async_call(:math, :sqrt, [4])

    assert_raise ArgumentError, ~r/Py.await\/2 takes a timeout .* got: -5/, fn ->
      Py.await(task, -5)
    end

    assert_raise ArgumentError, ~r/got: :soon/, fn ->
      Py.await(task, :erlang.binary_to_atom("soon"))
    end

    assert Py.await(task) == {:ok, 2.0}
  end

  test "async_call and cast check their options in the caller, before any process starts" do
    Process.flag(:trap_exit, true)

    for opts <- [[timeout: :bad], %{}, [return: :json], [context: 5], [kwargs: :x]] do
      assert_raise ArgumentError, fn -> Py.async_call(:math, :sqrt, [4], opts) end
      assert_raise ArgumentError, fn -> Py.cast(:math, :sqrt, [4], opts) end
    end

    assert_raise ArgumentError, ~r/:timeout option .* got: :bad/, fn ->
      Py.async_call(:math, :sqrt, [4], timeout: :bad)
    end

    # No task was started, so none crashed.
    assert Process.info(self(), :messages) == {:messages, []}
  end

  test "register_function names a bad name or function" do
    f = fn -> 1 end

    for name <- [123, nil, true, false, {:a}] do
      assert_raise ArgumentError,
                   ~r/an atom or a string.*got: #{Regex.escape(inspect(name))}/,
                   fn ->
                     Py.register_function(name, f)
                   end

      assert_raise ArgumentError, ~r/register_function\/3 takes the name/, fn ->
        Py.register_function(name, String, :upcase)
      end
    end

    assert_raise ArgumentError, ~r/takes a function .* got: :notfun/, fn ->
      Py.register_function(:x, Process.get(:no_such_key, :notfun))
    end

    assert_raise ArgumentError, ~r/a module and a function name.*"String"/, fn ->
      Py.register_function(:x, Process.get(:no_such_key, "String"), :upcase)
    end
  end

  test "Py.Context and Py.Pool name bad options" do
    for start <- [&Py.Context.start/1, &Py.Context.start_link/1] do
      assert_raise ArgumentError, ~r/options of Py.Context.start_link\/1 .* got: :bad/, fn ->
        start.(:bad)
      end
    end

    assert_raise ArgumentError, ~r/options of Py.Pool.start_link\/1 .* got: :bad/, fn ->
      Py.Pool.start_link(:bad)
    end

    assert_raise ArgumentError, ~r/a pool needs an atom :name .* got: name nil/, fn ->
      Py.Pool.start_link([])
    end

    assert_raise ArgumentError, ~r/a pool needs an atom :name/, fn ->
      Py.Pool.child_spec(size: 2)
    end
  end

  test "Py.install names a bad :cache_dir" do
    assert_raise ArgumentError, ~r/:cache_dir option .* got: 123/, fn ->
      Py.install(["six"], cache_dir: 123, progress: false)
    end
  end

  test "Py.State.incr/decr name a non-integer amount" do
    assert_raise ArgumentError, ~r/Py.State.incr\/2 counts by an integer amount, got: 1.5/, fn ->
      Py.State.incr("bad_input_k", 1.5)
    end

    assert_raise ArgumentError, ~r/Py.State.decr\/2 .* got: "1"/, fn ->
      Py.State.decr("bad_input_k", "1")
    end

    assert Py.State.get("bad_input_k") == nil
  end

  test "Py.Context.stop/1 of a context that is not running is :ok; a bad context is named" do
    {:ok, ctx} = Py.Context.start()
    assert Py.Context.stop(ctx) == :ok
    assert Py.Context.stop(ctx) == :ok
    assert Py.Context.stop(:no_such_context_registered) == :ok

    assert_raise ArgumentError, ~r/a context is a Py.Context pid or the name/, fn ->
      Py.Context.stop(5)
    end
  end

  test "Py.repr/2 of plain values converts them first" do
    assert Py.repr(42) == {:ok, "42"}
    assert Py.repr(%{"a" => [1, nil]}) == {:ok, "{'a': [1, None]}"}
    assert Py.repr({1.5, true}) == {:ok, "(1.5, True)"}
    # An atom or a string is a value (a str), not a module name.
    assert Py.repr(:math) == {:ok, "'math'"}
    assert {:error, %Py.Error{kind: :conversion}} = Py.repr(fn -> :ok end)
  end
end
