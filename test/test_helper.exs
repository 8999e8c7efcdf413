# numpy lives in the project-local venv that `make test` creates. Without it
# the numpy tests are excluded, loudly.
numpy? =
  match?({:ok, true}, Py.eval("__import__('importlib.util').util.find_spec('numpy') is not None"))

exclude =
  if numpy? do
    []
  else
    IO.puts(
      :stderr,
      "\n*** numpy is not importable from #{Py.info().executable}: numpy tests EXCLUDED " <>
        "(run `make test` to use the project venv) ***\n"
    )

    [:numpy]
  end

IO.puts("py test run: Python #{Py.info().python_version} at #{Py.info().executable}")
ExUnit.start(exclude: exclude)
