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
end
