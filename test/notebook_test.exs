defmodule Py.NotebookTest do
  # examples/notebook.exs, run as a user would (`elixir examples/notebook.exs`)
  # from a clean Mix.install directory and a clean Python cache: py is built
  # from this checkout with cargo and six comes from PyPI. Tagged :notebook
  # (scripts/test.sh runs it in the py311 lane). Not async: it builds the NIF.
  use ExUnit.Case, async: false
  import Py.Test.VenvHelpers

  @moduletag :notebook
  @moduletag timeout: 600_000

  test "examples/notebook.exs runs from a clean machine and its Python cell prints" do
    root = Path.expand("..", __DIR__)
    tmp = tmp_dir!("notebook")

    # Hermetic: its own Mix.install and Python caches, and nothing of this
    # test run's Mix environment.
    env = [
      {"MIX_INSTALL_DIR", Path.join(tmp, "mix")},
      {"PY_CACHE_DIR", Path.join(tmp, "cache")},
      {"PY_PYTHON", Py.info().executable}
      | for(
          var <-
            ~w(MIX_ENV MIX_BUILD_PATH MIX_BUILD_ROOT MIX_DEPS_PATH MIX_EXS MIX_LOCKFILE PY_PARALLEL PY_NATIVE_FEATURES),
          do: {var, nil}
        )
    ]

    {out, status} =
      System.cmd(System.find_executable("elixir"), [Path.join(root, "examples/notebook.exs")],
        env: env,
        cd: tmp,
        stderr_to_stdout: true
      )

    assert status == 0, out
    assert out =~ "==> py: building the NIF from source for Python"
    assert out =~ "==> py: installing six==1.*"
    assert out =~ ~r/Python \d+\.\d+\.\d+ says hello, with six 1\.\d+/
    assert out =~ "squares from Python: [0, 1, 4, 9, 16, 25]"
  end
end
