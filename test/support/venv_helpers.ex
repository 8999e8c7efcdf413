defmodule Py.Test.VenvHelpers do
  @moduledoc false
  # Small virtual environments for the environment tests, made offline.

  @doc "A fresh temporary directory, removed when the test ends."
  def tmp_dir!(tag) do
    dir = Path.join(System.tmp_dir!(), "py-#{tag}-#{System.unique_integer([:positive])}")
    File.rm_rf!(dir)
    File.mkdir_p!(dir)
    ExUnit.Callbacks.on_exit(fn -> File.rm_rf!(dir) end)
    dir
  end

  @doc """
  A venv (without pip: quick, offline) made from the running Python's base
  interpreter. Returns `{venv_path, site_packages}`.
  """
  def make_venv!(dir) do
    {:ok, python} = Py.Install.base_python()

    {out, status} =
      System.cmd(python, ["-m", "venv", "--without-pip", dir], stderr_to_stdout: true)

    if status != 0, do: raise("python -m venv failed: #{out}")
    [site] = Path.wildcard(Path.join(dir, "lib/python*/site-packages"))
    {dir, site}
  end

  @doc "A module name no test has imported yet."
  def fresh_module(prefix), do: "#{prefix}_#{System.unique_integer([:positive])}"
end
