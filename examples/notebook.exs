# A Livebook notebook, as a script. Each "cell" below is what you would put
# in a Livebook code cell; run the whole thing with
#
#     elixir examples/notebook.exs
#
# It needs Elixir, cargo and a Python 3.10+ with a shared libpython
# (`python3` on PATH, or PY_PYTHON=/path/to/python), and PyPI access the
# first time. In Livebook, use the same Mix.install with a path (or git)
# dependency in the setup cell.

# -- Setup cell: py (built from this checkout; the first run compiles the NIF)
Mix.install([{:py, path: Path.expand("..", __DIR__)}])

# -- Python dependencies, like Mix.install for Python: made once into a
#    cached virtual environment, reused (offline) by later runs.
{:ok, venv} = Py.install(["six==1.*"])
IO.puts("Python packages in #{venv}")

# -- A Python cell: print output appears in the cell.
Py.exec!("""
import sys, six
print(f"Python {sys.version.split()[0]} says hello, with six {six.__version__}")
""")

# -- Values cross both ways.
squares = Py.eval!("[n * n for n in range(limit)]", %{limit: 6})
IO.puts("squares from Python: #{inspect(squares)}")
