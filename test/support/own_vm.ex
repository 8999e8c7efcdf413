defmodule Py.Test.OwnVM do
  @moduledoc false
  # Runs `script` with `elixir` in a VM of its own, with py's compiled code
  # on its path: for settings read once at start, and for Python that may
  # end its VM. Returns `{output, exit_status}`.
  def run(script) do
    ebin = Path.join(to_string(:code.lib_dir(:py)), "ebin")
    System.cmd("elixir", ["-pa", ebin, "-e", script], stderr_to_stdout: true)
  end
end
