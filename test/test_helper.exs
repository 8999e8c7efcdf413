info = Py.info()

# Tests of the parallel pool run only in a parallel build (the `make test`
# lane with PY_PARALLEL=1); a lane that asked for it and did not get it fails.
parallel? = info.mode == :parallel

if System.get_env("PY_PARALLEL") == "1" and not parallel? do
  raise "PY_PARALLEL=1 but the NIF was not built with the parallel pool"
end

# numpy lives in the project-local venvs that `make test` creates. Without
# it the numpy tests are excluded, loudly.
numpy? =
  match?(
    {:ok, true},
    Py.eval("__import__('importlib.util').util.find_spec('numpy') is not None")
  )

unless numpy? do
  IO.puts(
    :stderr,
    "\n*** numpy is not importable from #{info.executable}: numpy tests EXCLUDED " <>
      "(run `make test` to use the project venv) ***\n"
  )
end

exclude = if(parallel?, do: [], else: [:parallel]) ++ if(numpy?, do: [], else: [:numpy])

# Tests that need PyPI (`:network`), build py from scratch (`:notebook`) or
# start many VMs for the precompiled NIFs (`:packaging`) run when included:
# `mix test --include network --include notebook --include packaging`
# (scripts/test.sh does so in the py311 lane).
exclude = exclude ++ [:network, :notebook, :packaging]

# The isolated-context tests make this VM a distributed node. Done midway,
# while Elixir 1.14 still compiles test files (ExUnit runs loaded modules
# meanwhile), the compiler's own processes, started as nonode@nohost, were
# seen as remote ones ("no connection to nonode@nohost" compiling a test
# file, once in CI). So the node becomes distributed here, before any test
# file loads, the way an isolated context would make it.
:ok = Py.Context.ensure_distributed()

IO.puts("py test run: Python #{info.python_version} at #{info.executable}, mode #{info.mode}")
ExUnit.start(exclude: exclude)
