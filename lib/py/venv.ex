defmodule Py.Venv do
  @moduledoc false
  # Activating a virtual environment in the running interpreter(s).
  #
  # The interpreter is started once, for the Python the NIF was built for.
  # A venv of the same Python major.minor is activated by putting its
  # site-packages on sys.path (site.addsitedir, so .pth files work) and
  # pointing sys.prefix and VIRTUAL_ENV at it, in every interpreter: the NIF
  # (venv.rs) does that in the main interpreter at once and in each
  # parallel-pool slot before its next call; slots made later apply it when
  # they start.

  alias Py.Error

  @doc "Validates `path` and makes it the active venv everywhere."
  @spec activate(Path.t()) :: :ok | {:error, Error.t()}
  def activate(path) when is_binary(path) or is_list(path) do
    with {:ok, prefix, site_dirs} <- validate(path) do
      set({prefix, site_dirs})
    end
  end

  def activate(other) do
    raise ArgumentError, "a venv path must be a string, got: #{inspect(other)}"
  end

  @doc "Deactivates the active venv, if any."
  @spec deactivate() :: :ok | {:error, Error.t()}
  def deactivate, do: set(nil)

  @doc "The active venv's path, or nil."
  @spec active() :: String.t() | nil
  def active, do: Py.Native.venv_current()

  # A step of the application's start: activates `config :py, venv:`
  # before the pool starts, or fails the start with the reason.
  @doc false
  def child_spec(_) do
    %{id: __MODULE__, start: {__MODULE__, :start_configured, []}, restart: :temporary}
  end

  @doc false
  def start_configured do
    case Application.get_env(:py, :venv) do
      nil ->
        :ignore

      path ->
        case activate(path) do
          :ok -> :ignore
          {:error, error} -> {:error, "config :py, venv: " <> Exception.message(error)}
        end
    end
  end

  # Isolated contexts on this host follow (`Py.Isolated.Context`).
  defp set(spec) do
    case Py.Native.venv_set(spec) do
      :ok ->
        Py.Isolated.Context.venv_changed(spec)
        :ok

      {:error, message} ->
        {:error, error("cannot apply the virtual environment: " <> message)}
    end
  end

  @doc """
  Checks that `path` is a venv for the running Python: `{:ok, prefix,
  site_dirs}` or an `:environment` error saying what is wrong.
  """
  @spec validate(Path.t()) :: {:ok, String.t(), [String.t()]} | {:error, Error.t()}
  def validate(path) do
    prefix = Path.expand(path)
    cfg = Path.join(prefix, "pyvenv.cfg")

    cond do
      not File.dir?(prefix) ->
        {:error, error("there is no directory at #{prefix}; a virtual environment was expected")}

      not File.regular?(cfg) ->
        {:error,
         error(
           "#{prefix} is not a virtual environment (it has no pyvenv.cfg); make one with " <>
             "`#{base_hint()} -m venv #{prefix}` or let Py.install/2 make one"
         )}

      true ->
        with :ok <- check_version(prefix, read_cfg(cfg)),
             {:ok, site_dirs} <- site_dirs(prefix) do
          {:ok, prefix, site_dirs}
        end
    end
  end

  defp read_cfg(cfg) do
    for line <- String.split(File.read!(cfg), ["\r\n", "\n"]),
        [key, value] <- [String.split(line, "=", parts: 2)],
        into: %{},
        do: {String.trim(key), String.trim(value)}
  end

  defp check_version(prefix, cfg) do
    running = major_minor(python_version())
    venv = major_minor(cfg["version"] || cfg["version_info"] || "")

    cond do
      venv == nil ->
        # No version recorded: site_dirs/1 checks for lib/pythonX.Y.
        :ok

      venv == running ->
        :ok

      true ->
        {:error,
         error(
           "the virtual environment at #{prefix} is for Python #{venv}, but py runs " <>
             "Python #{python_version()} (the Python its NIF was built for); make the venv " <>
             "with that Python (`#{base_hint()} -m venv DIR`) or build py for Python #{venv} " <>
             "(PY_PYTHON or `config :py, python:`)"
         )}
    end
  end

  defp site_dirs(prefix) do
    version = major_minor(python_version())
    suffix = if Py.Native.mode() == :free_threaded, do: "t", else: ""

    dirs =
      for lib <- ["lib", "lib64"],
          dir = Path.join([prefix, lib, "python#{version}#{suffix}", "site-packages"]),
          File.dir?(dir),
          uniq: true,
          do: dir

    # lib64 is often a symlink to lib: keep one of each real directory.
    dirs = Enum.uniq_by(dirs, &resolve/1)

    if dirs == [] do
      {:error,
       error(
         "the virtual environment at #{prefix} has no lib/python#{version}#{suffix}/site-packages; " <>
           "it was not made for Python #{python_version()}, or it is incomplete (make it again)"
       )}
    else
      {:ok, dirs}
    end
  end

  # Resolves symlinks in every component of an absolute path.
  defp resolve(path) do
    path
    |> Path.split()
    |> Enum.reduce("/", fn part, acc ->
      next = Path.join(acc, part)

      case File.read_link(next) do
        {:ok, target} -> resolve(Path.expand(target, acc))
        {:error, _} -> next
      end
    end)
  end

  defp python_version, do: (Py.Runtime.info() || %{})[:python_version] || "?"

  defp major_minor(version) do
    case Regex.run(~r/^(\d+)\.(\d+)/, version) do
      [_, major, minor] -> "#{major}.#{minor}"
      nil -> nil
    end
  end

  defp base_hint do
    case Py.Install.base_python() do
      {:ok, python} -> python
      {:error, _} -> "python#{major_minor(python_version())}"
    end
  end

  defp error(message), do: %Error{kind: :environment, message: message}
end
