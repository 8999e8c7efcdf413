# py in a single script, with no project: `elixir examples/mix_install.exs`.
#
# Mix.install compiles py for the Python it finds (PY_PYTHON, else python3
# on PATH). With a released py the NIF is a precompiled download and no
# Rust is needed; this checkout has no checksum file yet, so it is built
# from source with cargo unless a checksum file and cache say otherwise
# (PY_CHECKSUM_FILE, PY_CACHE_DIR; see docs/packaging.md).
Mix.install([{:py, path: Path.expand("..", __DIR__)}])

info = Py.info()
IO.puts("Python #{info.python_version} (#{info.executable}), NIF: #{inspect(info.nif)}")

{:ok, root} = Py.call(:math, :sqrt, [2.0])
IO.puts("math.sqrt(2.0) = #{root}")

:ok = Py.exec("print('hello from Python')")

{:ok, words} = Py.eval("sorted(set(text.split()))", %{text: "the quick the lazy the end"})
IO.puts("sorted words: #{Enum.join(words, " ")}")
