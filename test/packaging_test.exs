defmodule Py.PackagingTest do
  # End to end: `mix py.precompile` builds the artifact for this lane's
  # Python, a loopback HTTP server serves it, and fresh Mix projects,
  # Mix.install and the Livebook notebook install it. Slow (each step is a
  # new VM and compile), so it runs in one lane only (scripts/test.sh).
  use ExUnit.Case, async: false

  alias Py.Test.LoopbackHTTP

  @moduletag :packaging
  @moduletag timeout: 600_000

  @root Path.expand("..", __DIR__)
  @probe """
  info = Py.info()
  IO.puts("nif: " <> inspect(info.nif))
  IO.puts("libpython: " <> info.libpython)
  IO.puts("sum: " <> inspect(Py.eval("sum(range(10))")))
  IO.puts("decimal: " <> inspect(Py.eval("str(__import__('decimal').Decimal('1.1') + 1)")))
  """

  setup_all do
    tmp = Path.join(System.tmp_dir!(), "py-packaging-#{System.unique_integer([:positive])}")
    # Built straight into an offline cache (PY_CACHE_DIR=<tmp>/offline-cache).
    artifacts = Path.join([tmp, "offline-cache", "precompiled"])
    checksum = Path.join(tmp, "checksum-py.exs")
    python = Py.info().executable
    File.mkdir_p!(Path.join(tmp, "home"))
    on_exit(fn -> File.rm_rf!(tmp) end)

    # One variant for one Python, in this lane's cargo target dir (only the
    # crate itself is recompiled).
    Mix.shell(Mix.Shell.Process)

    {[name], ^checksum} =
      Mix.Tasks.Py.Precompile.run([
        "--python",
        python,
        "--variant",
        "default",
        "--out",
        artifacts,
        "--checksum-file",
        checksum,
        "--target-dir",
        target_dir()
      ])

    Mix.shell(Mix.Shell.IO)

    %{
      tmp: tmp,
      artifacts: artifacts,
      checksum: checksum,
      python: python,
      version: Py.info().python_version,
      xy: Py.info().python_version |> String.split(".") |> Enum.take(2) |> Enum.join("."),
      name: name
    }
  end

  test "the tarball holds one library named like itself and the checksum file lists it", ctx do
    tarball = File.read!(Path.join(ctx.artifacts, ctx.name))

    version = Mix.Project.config()[:version]
    nif = List.last(PyBuild.Target.nif_versions())

    assert ctx.name ==
             "libpy_nif-v#{version}-nif-#{nif}-#{PyBuild.Target.triple()}--py#{ctx.xy}.so.tar.gz"

    assert {:ok, [{so, _}]} = :erl_tar.extract({:binary, tarball}, [:memory, :compressed])
    assert to_string(so) == String.replace_suffix(ctx.name, ".tar.gz", "")
    assert {:ok, %{} = sums} = PyBuild.Checksums.read(ctx.checksum)
    assert sums == %{ctx.name => PyBuild.Checksums.sha256(tarball)}
  end

  test "mix py.precompile --list: a default and (3.13+) a parallel artifact for this Python",
       ctx do
    Mix.shell(Mix.Shell.Process)

    variants = if Version.match?(ctx.version, ">= 3.13.0"), do: ["", "-parallel"], else: [""]

    expected =
      for v <- variants, do: String.replace(ctx.name, "--py#{ctx.xy}", "--py#{ctx.xy}#{v}")

    try do
      assert Mix.Tasks.Py.Precompile.run(["--list", "--python", ctx.python]) == expected

      # Found without --python too when this Python X.Y is on PATH (a
      # distro's python3.X: the Debian root lanes).
      if (found = System.find_executable("python#{ctx.xy}")) && not (found =~ "/shims/") do
        listed = Mix.Tasks.Py.Precompile.run(["--list"])

        assert Enum.all?(expected, &(&1 in listed)),
               "#{inspect(expected)} not in #{inspect(listed)}"
      end
    after
      Mix.shell(Mix.Shell.IO)
    end
  end

  test "a fresh project installs the precompiled NIF with no cargo on PATH; compiles after the first make no request",
       ctx do
    server = LoopbackHTTP.start(ctx.artifacts)
    on_exit(fn -> LoopbackHTTP.stop(server) end)
    # py as `mix deps.get` would place it: its package files only, in deps/.
    app = new_project!(ctx, "app", server.url, :packaged)
    env = env(ctx, [{"PY_CACHE_DIR", Path.join(ctx.tmp, "cache-app")}])
    assert {_, status} = System.cmd("sh", ["-c", "command -v cargo"], env: env)
    assert status != 0, "cargo must not be on the PATH of this test"

    assert {out, 0} = mix(app, ["compile"], env)
    assert out =~ "installing the precompiled NIF #{ctx.name}"
    assert out =~ "downloading #{server.url}/#{ctx.name}"
    refute out =~ "building the NIF"
    assert LoopbackHTTP.requests(server) == 1

    assert {out, 0} = mix(app, ["run", "-e", @probe], env)
    assert out =~ ~s(nif: {:precompiled, "#{ctx.name}"})
    assert out =~ "sum: {:ok, 45}"
    assert out =~ ~s(decimal: {:ok, "2.1"})
    # The artifact's rpath is $ORIGIN: libpython was found through the link
    # the installer put next to the NIF.
    assert out =~ "libpython: #{app}/_build/dev/lib/py/priv/native/libpython#{ctx.xy}.so"

    # Nothing to do the second time: no install, no request.
    assert {out, 0} = mix(app, ["compile"], env)
    refute out =~ "py:"
    assert LoopbackHTTP.requests(server) == 1

    # A clean build with the tarball in the cache: no request (the server
    # is gone, so one would fail the compile).
    LoopbackHTTP.stop(server)
    File.rm_rf!(Path.join(app, "_build"))
    assert {out, 0} = mix(app, ["compile"], env)
    assert out =~ "installing the precompiled NIF #{ctx.name}"
    refute out =~ "downloading"
    assert LoopbackHTTP.requests(server) == 1
    assert {out, 0} = mix(app, ["run", "-e", @probe], env)
    assert out =~ "sum: {:ok, 45}"
  end

  test "a tampered artifact is rejected and nothing is installed", ctx do
    # A well-formed tarball of the same name whose library was changed.
    served = Path.join(ctx.tmp, "tampered")
    File.mkdir_p!(served)
    tarball = File.read!(Path.join(ctx.artifacts, ctx.name))
    {:ok, [{so_name, so}]} = :erl_tar.extract({:binary, tarball}, [:memory, :compressed])
    <<head::binary-size(4096), byte, rest::binary>> = so
    tampered = <<head::binary, Bitwise.bxor(byte, 1), rest::binary>>
    path = String.to_charlist(Path.join(served, ctx.name))
    :ok = :erl_tar.create(path, [{so_name, tampered}], [:compressed])

    server = LoopbackHTTP.start(served)
    on_exit(fn -> LoopbackHTTP.stop(server) end)
    app = new_project!(ctx, "tampered", server.url)
    cache = Path.join(ctx.tmp, "cache-tampered")

    assert {out, status} = mix(app, ["compile"], env(ctx, [{"PY_CACHE_DIR", cache}]))
    assert status != 0
    assert out =~ "py refused the precompiled NIF from #{server.url}/#{ctx.name}"
    assert out =~ "nothing was installed"
    assert LoopbackHTTP.requests(server) == 1
    refute File.exists?(Path.join(app, "_build/dev/lib/py/priv/native/libpy_nif.so"))
    refute File.exists?(Path.join([cache, "precompiled", ctx.name]))
  end

  test "with no artifact for this Python it builds from source, saying why", ctx do
    other = String.replace(ctx.name, "--py#{ctx.xy}", "--py3.99")
    checksum = Path.join(ctx.tmp, "checksum-other.exs")
    File.write!(checksum, PyBuild.Checksums.format(%{other => PyBuild.Checksums.sha256("x")}))
    app = new_project!(ctx, "fallback", "http://127.0.0.1:9")
    env = env(ctx, [{"PY_CHECKSUM_FILE", checksum}])

    # Without cargo that is a clear error...
    assert {out, status} = mix(app, ["compile"], env)
    assert status != 0
    assert out =~ "building the NIF from source for Python #{ctx.version}"
    assert out =~ "lists no precompiled NIF named #{ctx.name}"
    assert out =~ "`cargo` is not on PATH"

    # ...and with cargo it builds (in this lane's target dir, to be quick).
    # (HOME is private to the test: rustup and cargo keep their own homes.)
    env =
      env(ctx, [
        {"PY_CHECKSUM_FILE", checksum},
        {"PATH", Path.dirname(System.find_executable("cargo")) <> ":" <> elixir_path()},
        {"CARGO_TARGET_DIR", target_dir()},
        {"CARGO_HOME", System.get_env("CARGO_HOME") || Path.expand("~/.cargo")},
        {"RUSTUP_HOME", System.get_env("RUSTUP_HOME") || Path.expand("~/.rustup")}
      ])

    assert {out, 0} = mix(app, ["compile"], env)
    assert out =~ "building the NIF from source for Python #{ctx.version}"
    assert {out, 0} = mix(app, ["run", "-e", @probe], env)
    assert out =~ "nif: :source"
    assert out =~ "sum: {:ok, 45}"
  end

  test "examples/mix_install.exs works offline from the cache, with no cargo", ctx do
    assert {out, 0} =
             System.cmd("elixir", [Path.join(@root, "examples/mix_install.exs")],
               env: install_env(ctx, "mix_install"),
               cd: ctx.tmp,
               stderr_to_stdout: true
             )

    # The Python this lane runs, not another libpython on the default path.
    assert out =~ "Python #{ctx.version} (#{ctx.python}), NIF: {:precompiled, \"#{ctx.name}\"}"
    assert out =~ "math.sqrt(2.0) = 1.4142135623730951"
    assert out =~ "hello from Python"
    assert out =~ "sorted words: end lazy quick the"
  end

  test "the Livebook notebook's Elixir cells run in order", ctx do
    notebook = Path.join(@root, "docs/livebook.livemd")

    cells =
      Regex.scan(~r/^```elixir\n(.*?)^```$/ms, File.read!(notebook), capture: :all_but_first)
      |> List.flatten()

    assert length(cells) >= 8
    assert hd(cells) =~ "Mix.install"

    # ~PY needs Elixir 1.15 (multi-letter sigils): its cell runs on the
    # newer lanes only.
    sigil? = Version.match?(System.version(), ">= 1.15.0")
    cells = if sigil?, do: cells, else: Enum.reject(cells, &(&1 =~ "~PY"))

    # Like Livebook: each cell in turn, with the bindings of the ones
    # before, its value shown after it.
    cells_file = Path.join(ctx.tmp, "cells.etf")
    File.write!(cells_file, :erlang.term_to_binary(cells))
    runner = Path.join(ctx.tmp, "run_notebook.exs")

    File.write!(runner, """
    [cells_file, notebook] = System.argv()

    Enum.reduce(:erlang.binary_to_term(File.read!(cells_file)), [], fn cell, binding ->
      {value, binding} = Code.eval_string(cell, binding, file: notebook)
      IO.puts("=> " <> inspect(value))
      binding
    end)
    """)

    assert {out, 0} =
             System.cmd("elixir", [runner, cells_file, notebook],
               env: install_env(ctx, "notebook"),
               cd: ctx.tmp,
               stderr_to_stdout: true
             )

    assert out =~ ~s(nif: {:precompiled, "#{ctx.name}"})
    assert out =~ ~s(python_version: "#{ctx.version}")
    assert out =~ "=> {:ok, 1.4142135623730951}"
    assert out =~ "=> {:ok, [0, 1, 4, 9, 16]}"
    assert out =~ ~s(=> {:ok, ["end", "lazy", "quick", "the"]})
    assert out =~ "line 0 from Python\nline 1 from Python\nline 2 from Python\n=> :ok"
    assert out =~ ~s(=> {:ok, [{"to", 2}, {"be", 2}]})
    assert out =~ ~s(=> {:ok, "HELLO FROM PYTHON!"})
    assert out =~ "=> {:ok, 2.98}"
    if sigil?, do: assert(out =~ "=> {2, [3.1, 3.4]}")
    assert out =~ "=> %Py.Array{"
    assert out =~ "type: {:f, 32}, shape: {2, 3}}"
    assert out =~ "=> {:ok, 30.0}"
    assert out =~ ~s(=> {"SyntaxError", 1,)
    assert out =~ "KeyError: 'missing'"
    assert out =~ ~s(=> {:ok, {"missing"}})
  end

  # ------------------------------------------------------------------ helpers

  # Where this lane's NIF was built (scripts/lane.sh shares one per stack).
  defp target_dir,
    do:
      System.get_env("CARGO_TARGET_DIR") ||
        Path.join(Mix.Project.build_path(), "py_native/target")

  # The environment of a child VM: no cargo on PATH, a private HOME, the test's
  # checksum file, nothing inherited from this lane's build settings.
  defp env(ctx, extra) do
    home = Path.join(ctx.tmp, "home")

    base = %{
      "PATH" => elixir_path(),
      "HOME" => home,
      "MIX_HOME" => Path.join(home, ".mix"),
      "MIX_ENV" => "dev",
      "MIX_BUILD_PATH" => nil,
      "MIX_INSTALL_DIR" => Path.join(ctx.tmp, "mix-install"),
      "PY_PYTHON" => ctx.python,
      "PY_CHECKSUM_FILE" => ctx.checksum,
      "PY_CACHE_DIR" => Path.join(ctx.tmp, "cache"),
      "PY_PARALLEL" => nil,
      "PY_BUILD" => nil,
      "PY_NATIVE_FEATURES" => nil,
      "CARGO_TARGET_DIR" => nil
    }

    Enum.to_list(Enum.into(extra, base))
  end

  # Where mix, elixir and erl are, and the basic tools: no cargo (~/.cargo/bin).
  defp elixir_path do
    dirs =
      for exe <- ~w(mix elixir erl), path = System.find_executable(exe), do: Path.dirname(path)

    Enum.join(Enum.uniq(dirs ++ ["/usr/bin", "/bin"]), ":")
  end

  # Mix.install and the notebook: offline, the tarball already in the
  # cache directory (the way docs/packaging.md describes offline installs).
  # Each has an install dir of its own, so each is a first build: from
  # Elixir 1.20 on, Mix.install of a cached install insists on Hex, which
  # cannot be fetched here.
  defp install_env(ctx, name) do
    env(ctx, [
      {"PY_CACHE_DIR", Path.dirname(ctx.artifacts)},
      {"MIX_ENV", nil},
      {"MIX_INSTALL_DIR", Path.join(ctx.tmp, "mix-install-#{name}")}
    ])
  end

  defp new_project!(ctx, name, base_url, source \\ :checkout) do
    dir = Path.join(ctx.tmp, name)
    File.mkdir_p!(Path.join(dir, "config"))

    py =
      case source do
        :checkout ->
          @root

        # The files mix.exs lists for the hex package, copied where
        # `mix deps.get` would put them.
        :packaged ->
          deps_py = Path.join([dir, "deps", "py"])

          for file <- Mix.Project.config()[:package][:files],
              source = Path.join(@root, file),
              File.exists?(source) do
            File.mkdir_p!(Path.dirname(Path.join(deps_py, file)))
            File.cp_r!(source, Path.join(deps_py, file))
          end

          deps_py
      end

    File.write!(Path.join(dir, "mix.exs"), """
    defmodule #{Macro.camelize(name)}.MixProject do
      use Mix.Project

      def project do
        [app: :#{name}, version: "0.1.0", elixir: "~> 1.14", deps: [{:py, path: #{inspect(py)}}]]
      end

      def application, do: [extra_applications: [:logger]]
    end
    """)

    File.write!(Path.join(dir, "config/config.exs"), """
    import Config
    config :py, precompiled_base_url: #{inspect(base_url)}
    """)

    dir
  end

  defp mix(dir, args, env), do: System.cmd("mix", args, cd: dir, env: env, stderr_to_stdout: true)
end
