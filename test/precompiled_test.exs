defmodule Py.PrecompiledTest do
  # The pure parts of the precompiled-NIF loader (mix/py_build): names,
  # targets, NIF versions, the checksum file, the plan, verification and
  # unpacking. No Python involved; the end-to-end runs are in
  # packaging_test.exs.
  use ExUnit.Case, async: false

  alias PyBuild.{Artifact, Checksums, Precompiled, Target}
  alias Py.Test.LoopbackHTTP

  @info %{
    python: "/opt/python3.11/bin/python3",
    version: "3.11.7",
    version_tuple: {3, 11, 7},
    abiflags: "",
    libpython: "/opt/python3.11/lib/libpython3.11.so",
    soname: "libpython3.11.so.1.0"
  }
  @name "libpy_nif-v1.2.3-nif-2.15-x86_64-unknown-linux-gnu--py3.11.so.tar.gz"
  @plan_opts [version: "1.2.3", nif_version: "2.15", triple: "x86_64-unknown-linux-gnu"]

  setup do
    tmp = Path.join(System.tmp_dir!(), "py-precompiled-#{System.unique_integer([:positive])}")
    File.mkdir_p!(tmp)
    saved = for var <- ~w(PY_BUILD PY_CHECKSUM_FILE PY_CACHE_DIR), do: {var, System.get_env(var)}
    saved_config = Application.get_all_env(:py)
    # This checkout's config/config.exs forces source builds.
    Application.delete_env(:py, :force_build)
    System.delete_env("PY_BUILD")
    Mix.shell(Mix.Shell.Process)
    System.put_env("PY_CACHE_DIR", Path.join(tmp, "cache"))
    System.put_env("PY_CHECKSUM_FILE", Path.join(tmp, "checksum-py.exs"))

    on_exit(fn ->
      for {var, value} <- saved,
          do: if(value, do: System.put_env(var, value), else: System.delete_env(var))

      for {key, _} <- Application.get_all_env(:py), do: Application.delete_env(:py, key)
      Application.put_all_env(py: saved_config)

      Mix.shell(Mix.Shell.IO)
      File.rm_rf!(tmp)
    end)

    %{tmp: tmp}
  end

  describe "names" do
    test "the variant carries Python X.Y, ABI flags and the parallel feature" do
      assert Artifact.variant("3.11.7", "", []) == {:ok, "py3.11"}
      assert Artifact.variant("3.13.0", "", ["parallel"]) == {:ok, "py3.13-parallel"}
      assert Artifact.variant("3.13.1", "t", []) == {:ok, "py3.13t"}
      assert {:error, message} = Artifact.variant("3.13.0", "", ["parallel", "extra"])
      assert message =~ "extra"
    end

    test "the tarball name and the .so inside it" do
      assert Artifact.name("1.2.3", "2.15", "x86_64-unknown-linux-gnu", "py3.11") == @name

      assert Artifact.so_name(@name) ==
               "libpy_nif-v1.2.3-nif-2.15-x86_64-unknown-linux-gnu--py3.11.so"

      assert Artifact.for_build(@info, [], @plan_opts) == {:ok, @name}
    end

    test "target triples are normalised to Rust's spelling" do
      assert Target.normalize("x86_64-pc-linux-gnu") == "x86_64-unknown-linux-gnu"
      assert Target.normalize("amd64-pc-linux-gnu") == "x86_64-unknown-linux-gnu"
      assert Target.normalize("x86_64-redhat-linux-gnu") == "x86_64-unknown-linux-gnu"
      assert Target.normalize("x86_64-suse-linux-gnu") == "x86_64-unknown-linux-gnu"
      assert Target.normalize("aarch64-unknown-linux-gnu") == "aarch64-unknown-linux-gnu"
      assert Target.normalize("x86_64-alpine-linux-musl") == "x86_64-unknown-linux-musl"
      assert Target.normalize("aarch64-apple-darwin23.4.0") == "aarch64-apple-darwin"
      assert Target.normalize("arm64-apple-darwin22") == "aarch64-apple-darwin"
      assert Target.normalize("amd64-portbld-freebsd13.2") == "x86_64-unknown-freebsd"
      assert Target.triple() =~ ~r/^[a-z0-9_]+-(unknown|apple)-[a-z]+/
    end

    test "the NIF version is the highest available that the VM loads" do
      all = ["2.15", "2.16", "2.17"]
      assert Target.select_nif_version("2.16", all) == "2.16"
      assert Target.select_nif_version("2.17", all) == "2.17"
      assert Target.select_nif_version("2.18", all) == "2.17"
      assert Target.select_nif_version("2.14", all) == nil
      assert Target.select_nif_version("3.0", all) == nil
      assert Target.select_nif_version("2.16", ["2.15"]) == "2.15"
      assert Target.select_nif_version("junk", all) == nil
      assert Target.select_nif_version() in Target.nif_versions()
    end
  end

  describe "the checksum file" do
    test "round-trips through format and parse" do
      sums = %{@name => Checksums.sha256("a"), "other.so.tar.gz" => Checksums.sha256("b")}
      text = Checksums.format(sums)

      assert text =~
               ~s("#{@name}" => "sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb")

      assert Checksums.parse(text) == {:ok, sums}
    end

    test "is parsed, never evaluated, and malformed ones are rejected" do
      assert {:error, _} = Checksums.parse(~s(%{"a" => "md5:00"}))
      assert {:error, _} = Checksums.parse(~s(%{"a" => "sha256:00"}))
      assert {:error, _} = Checksums.parse(~s|[{"a", "sha256:#{String.duplicate("0", 64)}"}]|)
      assert {:error, _} = Checksums.parse(~s|%{"a" => File.rm!("x")}|)
      assert {:error, "not valid Elixir: " <> _} = Checksums.parse("%{")
      assert Checksums.parse("%{}") == {:ok, %{}}
    end

    test "is found through PY_CHECKSUM_FILE, the config, or the package root", %{tmp: tmp} do
      assert Checksums.path("/pkg") == Path.join(tmp, "checksum-py.exs")
      System.delete_env("PY_CHECKSUM_FILE")
      assert Checksums.path("/pkg") == "/pkg/checksum-py.exs"
      Application.put_env(:py, :precompiled_checksum_file, "/etc/sums.exs")
      assert Checksums.path("/pkg") == "/etc/sums.exs"
    end
  end

  describe "the plan" do
    test "a listed artifact is used, from the configured base URL", %{tmp: tmp} do
      write_sums(tmp, %{@name => Checksums.sha256("x")})
      Application.put_env(:py, :precompiled_base_url, "http://mirror.example/py/")

      assert {:precompiled, artifact} = plan()
      assert artifact.name == @name
      assert artifact.checksum == Checksums.sha256("x")
      assert artifact.url == "http://mirror.example/py/" <> @name
    end

    test "the default base URL is the release of this version", %{tmp: tmp} do
      write_sums(tmp, %{@name => Checksums.sha256("x")})
      assert {:precompiled, %{url: url}} = plan()
      assert url =~ ~r{^https://.*/v1\.2\.3/#{Regex.escape(@name)}$}
    end

    test "no checksum file, no entry, or unknown features build from source", %{tmp: tmp} do
      assert {:build, reason} = plan()
      assert reason =~ "no checksum file"

      write_sums(tmp, %{"libpy_nif-other.so.tar.gz" => Checksums.sha256("x")})
      assert {:build, reason} = plan()
      assert reason =~ "lists no precompiled NIF named #{@name}"

      assert {:build, reason} = Precompiled.plan(@info, ["tracing"], [root: "/x"] ++ @plan_opts)
      assert reason =~ "tracing"
    end

    test "PY_BUILD=1 or config force_build: true build from source", %{tmp: tmp} do
      write_sums(tmp, %{@name => Checksums.sha256("x")})
      System.put_env("PY_BUILD", "1")
      assert {:build, reason} = plan()
      assert reason =~ "PY_BUILD=1"

      System.delete_env("PY_BUILD")
      Application.put_env(:py, :force_build, true)
      assert {:build, _} = plan()
    end

    test "a malformed checksum file is a clear error", %{tmp: tmp} do
      File.write!(Path.join(tmp, "checksum-py.exs"), "%{oops")
      error = assert_raise Mix.Error, fn -> plan() end
      assert error.message =~ "checksum file"
      assert error.message =~ "PY_BUILD=1"
    end
  end

  describe "fetching and unpacking" do
    setup %{tmp: tmp} do
      served = Path.join(tmp, "served")
      File.mkdir_p!(served)
      so = "\x7fELF not really a library"
      tarball = tar!(tmp, [{Artifact.so_name(@name), so}])
      File.write!(Path.join(served, @name), tarball)
      server = LoopbackHTTP.start(served)
      on_exit(fn -> LoopbackHTTP.stop(server) end)
      artifact = artifact(server, tarball)
      %{server: server, served: served, so: so, tarball: tarball, artifact: artifact}
    end

    test "downloads once, verifies, caches, then works offline", ctx do
      assert Precompiled.fetch!(ctx.artifact) == ctx.tarball
      assert LoopbackHTTP.requests(ctx.server) == 1
      assert File.read!(Path.join(Precompiled.cache_dir(), @name)) == ctx.tarball
      assert Precompiled.unpack!(ctx.artifact, ctx.tarball) == ctx.so

      LoopbackHTTP.stop(ctx.server)
      assert Precompiled.fetch!(ctx.artifact) == ctx.tarball
      assert LoopbackHTTP.requests(ctx.server) == 1
    end

    test "a tampered download is refused and not cached", ctx do
      File.write!(Path.join(ctx.served, @name), ctx.tarball <> "tampered")
      error = assert_raise Mix.Error, fn -> Precompiled.fetch!(ctx.artifact) end
      assert error.message =~ "refused"
      assert error.message =~ ctx.artifact.checksum
      refute File.exists?(Path.join(Precompiled.cache_dir(), @name))
    end

    test "a tampered cached copy is replaced by a good download", ctx do
      File.mkdir_p!(Precompiled.cache_dir())
      File.write!(Path.join(Precompiled.cache_dir(), @name), "garbage")
      assert Precompiled.fetch!(ctx.artifact) == ctx.tarball
      assert LoopbackHTTP.requests(ctx.server) == 1
      assert File.read!(Path.join(Precompiled.cache_dir(), @name)) == ctx.tarball
    end

    test "a missing artifact is a clear download error", ctx do
      File.rm!(Path.join(ctx.served, @name))
      error = assert_raise Mix.Error, fn -> Precompiled.fetch!(ctx.artifact) end
      assert error.message =~ "HTTP 404"
      assert error.message =~ "PY_BUILD=1"
      assert error.message =~ "PY_CACHE_DIR"
    end

    test "an unreachable server is a clear download error", ctx do
      LoopbackHTTP.stop(ctx.server)
      error = assert_raise Mix.Error, fn -> Precompiled.fetch!(ctx.artifact) end
      assert error.message =~ "cannot connect to 127.0.0.1:"
      assert error.message =~ "econnrefused"
    end

    test "a cache that cannot be written costs a warning, not the install", ctx do
      not_a_dir = Path.join(ctx.tmp, "file")
      File.write!(not_a_dir, "")
      System.put_env("PY_CACHE_DIR", Path.join(not_a_dir, "cache"))

      assert Precompiled.fetch!(ctx.artifact) == ctx.tarball
      assert_received {:mix_shell, :error, [message]}
      assert message =~ "could not cache #{@name}"
      assert message =~ "PY_CACHE_DIR"
    end

    test "a proxy from the environment is not used for the loopback interface", ctx do
      System.put_env("HTTP_PROXY", "http://127.0.0.1:9")
      on_exit(fn -> System.delete_env("HTTP_PROXY") end)
      assert Precompiled.fetch!(ctx.artifact) == ctx.tarball
      assert LoopbackHTTP.requests(ctx.server) == 1
    end

    test "file:// base URLs read from disk", ctx do
      artifact = %{ctx.artifact | url: "file://" <> Path.join(ctx.served, @name)}
      assert Precompiled.fetch!(artifact) == ctx.tarball
      assert LoopbackHTTP.requests(ctx.server) == 0
    end

    test "a corrupt tarball is refused and nothing is installed", ctx do
      dest = Path.join(ctx.tmp, "priv/native")

      for {data, why} <- [
            {"not a tarball", "not a gzipped tar"},
            {tar!(ctx.tmp, [{"other.so", "x"}]), "holds other.so"},
            {tar!(ctx.tmp, [{Artifact.so_name(@name), "x"}, {"extra", "y"}]), "2 files"}
          ] do
        File.write!(Path.join(ctx.served, @name), data)
        File.rm_rf!(Precompiled.cache_dir())
        artifact = artifact(ctx.server, data)
        error = assert_raise Mix.Error, fn -> Precompiled.install!(artifact, @info, dest) end
        assert error.message =~ "corrupt"
        assert error.message =~ why
        refute File.exists?(dest)
      end
    end

    test "install puts the library and a libpython link in place", ctx do
      lib = Path.join(ctx.tmp, "lib")
      File.mkdir_p!(lib)
      File.write!(Path.join(lib, "libpython3.11.so.1.0"), "")
      info = %{@info | libpython: Path.join(lib, "libpython3.11.so")}
      dest = Path.join(ctx.tmp, "priv/native")
      # An earlier install for another Python left its link.
      File.mkdir_p!(dest)
      File.ln_s!("/elsewhere/libpython3.13.so.1.0", Path.join(dest, "libpython3.13.so.1.0"))

      Precompiled.install!(ctx.artifact, info, dest)
      assert File.read!(Path.join(dest, "libpy_nif.so")) == ctx.so
      assert File.ls!(dest) |> Enum.sort() == ["libpy_nif.so", "libpython3.11.so.1.0"]

      assert {:ok, target} = File.read_link(Path.join(dest, "libpython3.11.so.1.0"))
      assert target == Path.join(lib, "libpython3.11.so.1.0")
    end
  end

  describe "mix py.precompile" do
    test "--checksums-only lists this version's tarballs in --out", %{tmp: tmp} do
      out = Path.join(tmp, "out")
      File.mkdir_p!(out)
      version = Mix.Project.config()[:version]
      mine = for v <- ["py3.11", "py3.13-parallel"], do: Artifact.name(version, "2.15", "t", v)
      for name <- mine, do: File.write!(Path.join(out, name), name)
      File.write!(Path.join(out, Artifact.name("0.0.1", "2.15", "t", "py3.11")), "old")
      file = Path.join(tmp, "sums.exs")

      args = ["--checksums-only", "--out", out, "--checksum-file", file]
      assert Mix.Tasks.Py.Precompile.run(args) == {[], file}
      assert Checksums.read(file) == {:ok, Map.new(mine, &{&1, Checksums.sha256(&1)})}
      assert_received {:mix_shell, :info, ["==> py.precompile: 0 built, 2 listed in " <> _]}
    end

    test "bad arguments and an empty --out are clear errors", %{tmp: tmp} do
      assert_raise Mix.Error, ~r/unexpected arguments \["--colour"\]/, fn ->
        Mix.Tasks.Py.Precompile.run(["--colour"])
      end

      assert_raise Mix.Error, ~r/unknown --variant "fast"/, fn ->
        Mix.Tasks.Py.Precompile.run(["--variant", "fast", "--out", tmp])
      end

      assert_raise Mix.Error, ~r/no tarballs of version/, fn ->
        Mix.Tasks.Py.Precompile.run(["--checksums-only", "--out", tmp])
      end
    end
  end

  defp plan, do: Precompiled.plan(@info, [], [root: "/nonexistent"] ++ @plan_opts)

  defp write_sums(tmp, sums),
    do: File.write!(Path.join(tmp, "checksum-py.exs"), Checksums.format(sums))

  defp artifact(server, tarball) do
    %{
      name: @name,
      checksum: Checksums.sha256(tarball),
      url: server.url <> "/" <> @name,
      checksum_file: "test"
    }
  end

  defp tar!(tmp, files) do
    path = Path.join(tmp, "t-#{System.unique_integer([:positive])}.tar.gz")
    entries = for {name, data} <- files, do: {String.to_charlist(name), data}
    :ok = :erl_tar.create(String.to_charlist(path), entries, [:compressed])
    data = File.read!(path)
    File.rm!(path)
    data
  end
end
