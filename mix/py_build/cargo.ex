defmodule PyBuild.Cargo do
  @moduledoc false
  # Builds native/py_nif with cargo for one Python and one feature set, and
  # returns the path of the cdylib it produced (inside the target dir).

  @crate Path.expand("../../native/py_nif", __DIR__)

  @doc "The crate's directory."
  def crate, do: @crate

  @doc """
  Runs `cargo rustc --release` for `info`'s Python with `features`.

  Options: `:target_dir` (required), `:rpath` (`:absolute`, the default, for
  a build used on this machine; `:origin` for a precompiled artifact).
  """
  def build!(info, features, opts) do
    cargo =
      System.find_executable("cargo") ||
        Mix.raise("""
        py builds its native code with Rust, and `cargo` is not on PATH. Install Rust \
        (https://rustup.rs, or `apt-get install cargo`), make sure `cargo` is on PATH, \
        and compile again.
        """)

    args =
      [
        "rustc",
        "--release",
        "--message-format=json-render-diagnostics",
        "--manifest-path",
        Path.join(@crate, "Cargo.toml"),
        "--target-dir",
        Keyword.fetch!(opts, :target_dir)
      ] ++ if(features == [], do: [], else: ["--features", Enum.join(features, ",")])

    rpath = if Keyword.get(opts, :rpath, :absolute) == :origin, do: "origin", else: ""

    {out, status} =
      System.cmd(cargo, args,
        env: [{"PYO3_PYTHON", info.python}, {"PY_NIF_RPATH", rpath}],
        into: "",
        stderr_to_stdout: false
      )

    if status != 0 do
      Mix.raise("py: cargo failed (exit status #{status}); see the messages above")
    end

    out
    |> String.split("\n")
    |> Enum.filter(&(&1 =~ ~s("reason":"compiler-artifact") and &1 =~ ~s("name":"py_nif")))
    |> Enum.flat_map(&Regex.scan(~r/"([^"]+\.so)"/, &1, capture: :all_but_first))
    |> List.flatten()
    |> List.last() ||
      Mix.raise("py: cargo finished but reported no libpy_nif.so artifact")
  end
end
