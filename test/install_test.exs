defmodule Py.InstallTest do
  # Py.install/2. The tests tagged :network fetch a small package from PyPI
  # (scripts/test.sh runs them in the py311 lane); the others are offline.
  # Not async: the active venv is VM-wide.
  use ExUnit.Case, async: false
  import ExUnit.CaptureIO
  import Py.Test.VenvHelpers

  setup do
    on_exit(fn -> :ok = Py.deactivate_venv() end)
    %{cache: tmp_dir!("install-cache")}
  end

  defp marker(venv), do: File.read!(Path.join(venv, "py-install.done"))

  # Where an import of `name` would load it from now, from sys.path (not
  # sys.modules: another test may have imported it from its own venv).
  defp origin(name) do
    {:ok, origin} =
      Py.eval(
        "getattr(__import__('importlib.machinery').machinery.PathFinder.find_spec(n), 'origin', None)",
        %{n: name}
      )

    origin
  end

  test "makes a venv from the base Python with venv + pip, activates it, and reuses it", %{
    cache: cache
  } do
    {{:ok, venv}, out} = with_io(fn -> Py.install([], cache_dir: cache, installer: :pip) end)
    assert Path.dirname(venv) == Path.join(cache, "venvs")
    assert out =~ "==> py: making #{venv} with python -m venv and pip"
    assert Py.info().venv == venv
    assert Py.eval("__import__('sys').prefix") == {:ok, venv}

    # Made from the base interpreter, not from the venv py was built with.
    {:ok, base} = Py.Install.base_python()
    refute base == Py.info().executable
    assert File.read!(Path.join(venv, "pyvenv.cfg")) =~ "home = #{Path.dirname(base)}"
    assert File.exists?(Path.join(venv, "bin/pip"))

    # Again: found in the cache, no installer run (the marker is untouched).
    before = marker(venv)
    :ok = Py.deactivate_venv()
    {{:ok, ^venv}, out} = with_io(fn -> Py.install([], cache_dir: cache, installer: :pip) end)
    assert out == "==> py: using the cached Python environment #{venv}\n"
    assert marker(venv) == before
    assert Py.info().venv == venv

    # progress: false prints nothing; activate: false activates nothing.
    :ok = Py.deactivate_venv()
    opts = [cache_dir: cache, progress: false, activate: false]
    {{:ok, ^venv}, ""} = with_io(fn -> Py.install([], opts) end)
    assert Py.info().venv == nil

    # force: true makes it again.
    {{:ok, ^venv}, _} = with_io(fn -> Py.install([], cache_dir: cache, force: true) end)
    refute marker(venv) == before
  end

  test "the cache directory comes from the option, PY_CACHE_DIR, config, then the user cache" do
    assert Py.Install.cache_dir(cache_dir: "/opt/x") == "/opt/x"
    old = System.get_env("PY_CACHE_DIR")

    try do
      System.put_env("PY_CACHE_DIR", "/from/env")
      assert Py.Install.cache_dir() == "/from/env"
      System.delete_env("PY_CACHE_DIR")
      Application.put_env(:py, :cache_dir, "/from/config")
      assert Py.Install.cache_dir() == "/from/config"
      Application.delete_env(:py, :cache_dir)
      assert Py.Install.cache_dir() == :filename.basedir(:user_cache, "py")
    after
      Application.delete_env(:py, :cache_dir)
      if old, do: System.put_env("PY_CACHE_DIR", old), else: System.delete_env("PY_CACHE_DIR")
    end
  end

  test "a pyproject text that cannot be read is a clear error and leaves nothing cached", %{
    cache: cache
  } do
    text = "[project]\nname = \n"

    assert {:error, %Py.Error{kind: :environment, message: msg}} =
             Py.install(text, cache_dir: cache, installer: :pip, progress: false)

    assert msg =~ "cannot read the dependencies of the pyproject text"
    assert msg =~ "TOMLDecodeError"
    assert File.ls!(Path.join(cache, "venvs")) == []
    assert Py.info().venv == nil
  end

  test "a pyproject whose requires-python the running Python does not satisfy is refused before anything is made",
       %{cache: cache} do
    version = Py.info().python_version
    [major, minor | _] = String.split(version, ".")
    next = "#{major}.#{String.to_integer(minor) + 1}"

    for spec <- [
          ">=#{next}",
          "<#{major}.#{minor}",
          "==#{major}.#{minor}.*,!=#{version}",
          "~=#{next}.0"
        ] do
      text = "[project]\nname = \"demo\"\nrequires-python = \"#{spec}\"\ndependencies = []\n"

      assert {:error, %Py.Error{kind: :environment, message: msg}} =
               Py.install(text, cache_dir: cache, installer: :pip, progress: false)

      assert msg =~ "requires Python #{spec}"
      assert msg =~ "py runs Python #{version}"
    end

    refute File.exists?(Path.join(cache, "venvs"))
  end

  test "requires-python specifiers are read as PEP 440 says" do
    alias Py.Install.RequiresPython, as: R
    assert R.satisfied?(">=3.10,<3.13", "3.11.7")
    refute R.satisfied?(">=3.12", "3.11.7")
    assert R.satisfied?("~=3.10", "3.11.2")
    refute R.satisfied?("~=3.11.1", "3.12.0")
    assert R.satisfied?("==3.11.*", "3.11.7")
    refute R.satisfied?("!=3.11.*", "3.11.7")
    assert R.satisfied?(">3.11", "3.11.1")
    assert R.satisfied?("<=3.11", "3.11.0")
    assert R.satisfied?(">= 3.8", "3.11.0")
    assert R.satisfied?("bogus", "3.11.0") == {:invalid, "bogus"}
  end

  doctest Py.Install.RequiresPython

  test "installer: :uv without uv on PATH is a clear error", %{cache: cache} do
    path = System.get_env("PATH")

    try do
      System.put_env("PATH", tmp_dir!("empty-path"))

      assert {:error, %Py.Error{kind: :environment, message: msg}} =
               Py.install([], cache_dir: cache, installer: :uv, progress: false)

      assert msg =~ "`uv` is not on PATH"
      assert msg =~ "installer: :pip"
    after
      System.put_env("PATH", path)
    end
  end

  test "bad arguments raise ArgumentError" do
    assert_raise ArgumentError, ~r/list of requirement strings/, fn -> Py.install(:six) end
    assert_raise ArgumentError, ~r/got :six in the list/, fn -> Py.install([:six]) end
    assert_raise ArgumentError, ~r/no\s+\[project\] table/, fn -> Py.install("six") end
    assert_raise ArgumentError, ~r/:installer option/, fn -> Py.install([], installer: :conda) end
    assert_raise ArgumentError, ~r/unknown Py.install\/2 options/, fn -> Py.install([], x: 1) end
  end

  describe "from PyPI" do
    @describetag :network

    test "installs a small real package into a fresh cache, imports it, reuses the cache", %{
      cache: cache
    } do
      # six is not in the project venvs: only the install can make it importable.
      assert origin("six") == nil

      {{:ok, venv}, out} = with_io(fn -> Py.install(["six==1.*"], cache_dir: cache) end)
      assert out =~ "==> py: installing six==1.*"
      # pip's or uv's own progress lines reached the caller.
      assert out =~ "Successfully installed six-1." or out =~ "+ six==1."
      assert {:ok, "1." <> _} = Py.eval("__import__('six').__version__")
      assert String.starts_with?(origin("six"), venv)

      before = marker(venv)
      {{:ok, ^venv}, out} = with_io(fn -> Py.install(["six==1.*"], cache_dir: cache) end)
      assert out == "==> py: using the cached Python environment #{venv}\n"
      assert marker(venv) == before
    end

    test "a pyproject text's dependencies are installed", %{cache: cache} do
      pyproject = """
      [project]
      name = "notebook"
      version = "0.1.0"
      dependencies = ["six==1.*"]
      """

      {:ok, venv} = Py.install(pyproject, cache_dir: cache, progress: false)
      assert File.read!(Path.join(venv, "py-requirements.txt")) == "six==1.*\n"
      assert String.starts_with?(origin("six"), venv)
      assert {:ok, "1." <> _} = Py.eval("__import__('six').__version__")
    end

    test "a failed install returns the installer's own message and caches nothing", %{
      cache: cache
    } do
      assert {:error, %Py.Error{kind: :environment, message: msg}} =
               Py.install(["py-no-such-package-zz9q==1.0"], cache_dir: cache, progress: false)

      assert msg =~ ~r/^(uv )?pip install failed \(exit status \d+\)/

      assert msg =~
               ~r/No matching distribution found for py-no-such-package-zz9q|not found in the package registry/

      refute msg =~ "** ("
      assert File.ls!(Path.join(cache, "venvs")) == []
      assert Py.info().venv == nil
    end

    # uv on PATH, or the one `make test` installs (PY_TEST_UV).
    @uv System.find_executable("uv") || System.get_env("PY_TEST_UV")

    if @uv == nil do
      @tag skip: "uv is not on PATH and PY_TEST_UV is not set"
    end

    test "with uv", %{cache: cache} do
      path = System.get_env("PATH")

      uv = System.find_executable("uv") || System.get_env("PY_TEST_UV")

      try do
        System.put_env("PATH", Path.dirname(uv) <> ":" <> path)

        {{:ok, venv}, out} =
          with_io(fn -> Py.install(["six==1.*"], cache_dir: cache, installer: :uv) end)

        assert out =~ "with uv"
        assert out =~ "+ six==1."
        assert String.starts_with?(origin("six"), venv)
      after
        System.put_env("PATH", path)
      end
    end
  end
end
