defmodule Py.Runtime do
  @moduledoc false
  # Starts the interpreter once per VM, for the Python the NIF was built
  # against (recorded by the build in priv/native/py_build_info.etf).

  @info_key {__MODULE__, :info}

  @doc "Starts Python (idempotent). Returns the runtime info map."
  def start do
    with :ok <- check_loaded(),
         :ok <- Py.Config.configure_native(),
         {:ok, build} <- build_info(),
         {:ok, {version, libpython}} <-
           Py.Native.runtime_start(build.python, Py.Config.parallel_slots()) do
      info = %{
        python_version: version,
        executable: build.python,
        libpython: libpython,
        prefix: Map.get(build, :prefix),
        nif: Map.get(build, :nif, :source)
      }

      :persistent_term.put(@info_key, info)
      {:ok, info}
    else
      {:error, message} when is_binary(message) ->
        {:error, %Py.Error{kind: :runtime, message: "cannot start Python: " <> message}}
    end
  end

  @doc "The info map of the started runtime."
  def info, do: :persistent_term.get(@info_key, nil)

  defp check_loaded do
    case Py.Native.load_error() do
      nil ->
        :ok

      text ->
        {:error,
         "the py NIF could not be loaded (#{text}). Rebuild it with `mix compile` " <>
           "(it needs a Python with a shared libpython; a precompiled NIF can be " <>
           "replaced by a source build, which needs cargo, with PY_BUILD=1; see docs/packaging.md)"}
    end
  end

  defp build_info do
    path = Path.join([:code.priv_dir(:py), "native", "py_build_info.etf"])

    case File.read(path) do
      {:ok, bin} ->
        {:ok, :erlang.binary_to_term(bin)}

      {:error, reason} ->
        {:error,
         "no build info at #{path} (#{:file.format_error(reason)}); run `mix compile` to build the NIF"}
    end
  end
end
