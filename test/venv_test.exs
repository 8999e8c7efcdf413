defmodule Py.VenvTest do
  # Activating virtual environments at run time. Not async: the active venv
  # is VM-wide.
  use ExUnit.Case, async: false
  import Py.Test.VenvHelpers

  setup do
    on_exit(fn -> :ok = Py.deactivate_venv() end)
    :ok
  end

  defp sys_state(ctx \\ nil) do
    code =
      "(list(__import__('sys').path), __import__('sys').prefix, " <>
        "__import__('os').environ.get('VIRTUAL_ENV'))"

    {:ok, state} = if ctx, do: Py.Context.eval(ctx, code), else: Py.eval(code)
    state
  end

  test "a venv's packages import, its .pth files are honoured, Py.info shows it; deactivating undoes it" do
    tmp = tmp_dir!("venv")
    {venv, site} = make_venv!(Path.join(tmp, "venv"))
    probe = fresh_module("py_venv_probe")
    extra = fresh_module("py_venv_extra")
    File.write!(Path.join(site, probe <> ".py"), "VALUE = 42\n")
    extra_dir = Path.join(tmp, "extra")
    File.mkdir_p!(extra_dir)
    File.write!(Path.join(extra_dir, extra <> ".py"), "VALUE = 7\n")
    File.write!(Path.join(site, "py_test_extra.pth"), extra_dir <> "\n")

    {path_before, prefix_before, env_before} = sys_state()
    assert {:error, %Py.Error{type: "ModuleNotFoundError"}} = Py.call(probe, :__name__, [])

    assert :ok = Py.activate_venv(venv)
    assert Py.info().venv == venv
    assert Py.eval("__import__(m).VALUE", %{m: probe}) == {:ok, 42}
    assert Py.eval("__import__(m).VALUE", %{m: extra}) == {:ok, 7}

    {path, prefix, env} = sys_state()
    assert prefix == venv
    assert env == venv
    # The venv's entries come before the site-packages that were there.
    [first_old_site | _] = Enum.filter(path_before, &String.ends_with?(&1, "site-packages"))
    at = fn entry -> Enum.find_index(path, &(&1 == entry)) end
    assert at.(site) < at.(first_old_site)
    assert at.(extra_dir) < at.(first_old_site)

    # A context started now (another thread) sees it too.
    {:ok, ctx} = Py.Context.start_link()
    assert Py.Context.eval(ctx, "__import__(m).VALUE", %{m: probe}) == {:ok, 42}

    assert :ok = Py.deactivate_venv()
    assert Py.info().venv == nil
    assert sys_state() == {path_before, prefix_before, env_before}
    # A module of the venv that was never imported no longer imports.
    late = fresh_module("py_venv_late")
    File.write!(Path.join(site, late <> ".py"), "VALUE = 1\n")
    assert {:error, %Py.Error{type: "ModuleNotFoundError"}} = Py.eval("__import__(m)", %{m: late})
  end

  test "activation does not wait for a context busy in a long call; its next call has the venv" do
    {venv, _site} = make_venv!(Path.join(tmp_dir!("venv-busy"), "venv"))
    ch = Py.Channel.new()
    me = self()

    consumer =
      Task.async(fn ->
        waited =
          Py.eval(
            "(__import__('erlang').send(me, 'waiting'), list(ch))[1]",
            %{"ch" => ch, "me" => me},
            timeout: :infinity
          )

        {waited, Py.eval("__import__('sys').prefix")}
      end)

    assert_receive "waiting"
    # The consumer's context (a parallel-pool slot, or a thread of the main
    # interpreter) is blocked in list(ch) until the channel closes.
    activation = Task.async(fn -> Py.activate_venv(venv) end)
    assert Task.yield(activation, 30_000) == {:ok, :ok}
    :ok = Py.Channel.close(ch)
    assert Task.await(consumer) == {{:ok, []}, {:ok, venv}}
  end

  test "activating another venv replaces the active one" do
    tmp = tmp_dir!("venv2")
    {a, site_a} = make_venv!(Path.join(tmp, "a"))
    {b, site_b} = make_venv!(Path.join(tmp, "b"))
    only_b = fresh_module("py_venv_only_b")
    File.write!(Path.join(site_b, only_b <> ".py"), "VALUE = 'b'\n")

    :ok = Py.activate_venv(a)
    :ok = Py.activate_venv(b)
    {path, prefix, _} = sys_state()
    assert site_b in path
    refute site_a in path
    assert prefix == b
    assert Py.info().venv == b
    assert Py.eval("__import__(m).VALUE", %{m: only_b}) == {:ok, "b"}
  end

  test "a path that is not a usable venv is a clear error, and the active venv stays" do
    tmp = tmp_dir!("venv-bad")
    {good, site} = make_venv!(Path.join(tmp, "good"))
    :ok = Py.activate_venv(good)

    assert {:error, %Py.Error{kind: :environment, message: msg}} =
             Py.activate_venv(Path.join(tmp, "missing"))

    assert msg =~ "there is no directory at"

    plain = Path.join(tmp, "plain")
    File.mkdir_p!(plain)
    assert {:error, %Py.Error{kind: :environment, message: msg}} = Py.activate_venv(plain)
    assert msg =~ "is not a virtual environment (it has no pyvenv.cfg)"
    assert msg =~ "-m venv"

    # A venv made for another Python major.minor.
    other = Path.join(tmp, "other")
    File.mkdir_p!(Path.join(other, "lib/python3.9/site-packages"))
    File.write!(Path.join(other, "pyvenv.cfg"), "home = /usr/bin\nversion = 3.9.18\n")
    assert {:error, %Py.Error{kind: :environment, message: msg}} = Py.activate_venv(other)
    assert msg =~ "is for Python 3.9, but py runs Python #{Py.info().python_version}"

    # One written by uv (version_info), with no site-packages.
    [major, minor | _] = String.split(Py.info().python_version, ".")
    broken = Path.join(tmp, "broken")
    File.mkdir_p!(broken)
    File.write!(Path.join(broken, "pyvenv.cfg"), "version_info = #{major}.#{minor}.0\n")
    assert {:error, %Py.Error{kind: :environment, message: msg}} = Py.activate_venv(broken)
    assert msg =~ "has no lib/python#{major}.#{minor}"

    assert Py.info().venv == good
    {path, _, _} = sys_state()
    assert site in path
  end

  test "a real venv of the other project Python is refused" do
    running = Py.info().python_version
    root = Path.expand("..", __DIR__)

    other =
      Enum.find([".venv", ".venv-py313"], fn dir ->
        cfg = Path.join([root, dir, "pyvenv.cfg"])

        File.exists?(cfg) and
          not (File.read!(cfg) =~ ~r/^version\s*=\s*#{Regex.escape(String.slice(running, 0, 4))}/m)
      end)

    if other do
      assert {:error, %Py.Error{kind: :environment, message: msg}} =
               Py.activate_venv(Path.join(root, other))

      assert msg =~ "but py runs Python #{running}"
    end
  end

  test "a bad argument raises ArgumentError" do
    assert_raise ArgumentError, ~r/a venv path must be a string/, fn -> Py.activate_venv(42) end
  end

  @tag capture_log: true
  test "config :py, venv: is activated when the application starts" do
    {venv, site} = make_venv!(Path.join(tmp_dir!("venv-config"), "venv"))
    probe = fresh_module("py_venv_config")
    File.write!(Path.join(site, probe <> ".py"), "VALUE = 'configured'\n")

    Application.put_env(:py, :venv, venv)

    on_exit(fn ->
      Application.delete_env(:py, :venv)
      {:ok, _} = Application.ensure_all_started(:py)
    end)

    :ok = Application.stop(:py)
    {:ok, _} = Application.ensure_all_started(:py)
    assert Py.info().venv == venv
    assert Py.eval("__import__(m).VALUE", %{m: probe}) == {:ok, "configured"}

    # A bad one stops the application from starting, with the reason.
    :ok = Application.stop(:py)
    Application.put_env(:py, :venv, Path.join(venv, "nope"))
    assert {:error, {:py, reason}} = Application.ensure_all_started(:py)
    assert inspect(reason) =~ "config :py, venv: there is no directory at"
    Application.delete_env(:py, :venv)
    {:ok, _} = Application.ensure_all_started(:py)
  end

  describe "in the parallel pool" do
    @describetag :parallel

    test "every interpreter gets the venv: each slot, the main one, and slots made later" do
      {venv, site} = make_venv!(Path.join(tmp_dir!("venv-slots"), "venv"))
      probe = fresh_module("py_venv_slot")
      File.write!(Path.join(site, probe <> ".py"), "VALUE = 'everywhere'\n")
      :ok = Py.activate_venv(venv)

      contexts = Py.Test.Contexts.by_interpreter()
      assert map_size(contexts) == Py.info().slots
      {:ok, main} = Py.Context.start_link(interpreter: :main)

      for ctx <- [main | Map.values(contexts)] do
        assert Py.Context.eval(ctx, "__import__(m).VALUE", %{m: probe}) == {:ok, "everywhere"}
        {path, prefix, _} = sys_state(ctx)
        assert site in path
        assert prefix == venv
      end

      # A slot made after the activation starts with it.
      assert Py.Native.slot_recreate(0) == :ok

      for {_id, ctx} <- Py.Test.Contexts.by_interpreter() do
        assert Py.Context.eval(ctx, "__import__(m).VALUE", %{m: probe}) == {:ok, "everywhere"}
      end

      # Deactivation reaches every slot too.
      :ok = Py.deactivate_venv()

      for {_id, ctx} <- Py.Test.Contexts.by_interpreter() do
        {path, prefix, _} = sys_state(ctx)
        refute site in path
        refute prefix == venv
      end
    end
  end
end
