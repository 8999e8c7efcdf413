# The NIF compiler (and the precompiled-NIF loader and `mix py.precompile`
# it shares code with) must exist before this project compiles, here and
# when py is a dependency, so they live outside lib/ and are loaded from here.
unless Code.ensure_loaded?(Mix.Tasks.Compile.PyNative) do
  for file <- Enum.sort(Path.wildcard(Path.join(__DIR__, "mix/**/*.ex"))) do
    Code.require_file(file)
  end
end

defmodule Py.MixProject do
  use Mix.Project

  @version "0.1.0-dev"

  def project do
    [
      app: :py,
      version: @version,
      elixir: "~> 1.14",
      start_permanent: Mix.env() == :prod,
      compilers: [:py_native | Mix.compilers()],
      deps: [],
      elixirc_paths: elixirc_paths(Mix.env()),
      docs: [main: "readme"],
      package: package(),
      description:
        "Run CPython inside the BEAM: fast calls, real parallelism, a VM that stays up."
    ]
  end

  def application do
    [
      mod: {Py.Application, []},
      extra_applications: [:logger, :crypto]
    ]
  end

  defp elixirc_paths(:test), do: ["lib", "test/support"]
  defp elixirc_paths(_), do: ["lib"]

  defp package do
    [
      files:
        ~w(lib mix checksum-py.exs native/py_nif/src native/py_nif/Cargo.toml native/py_nif/Cargo.lock
                native/py_nif/build.rs mix.exs README.md CHANGELOG.md docs)
    ]
  end
end
