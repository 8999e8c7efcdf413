defmodule Py.Router do
  @moduledoc """
  Routes calls of a Python module (or of one function of it) to a named
  pool (`Py.Pool`).

      Py.Router.route("requests", :io)
      Py.Router.route({"model", "predict"}, :gpu)
      Py.call(:requests, :get, [url])   # runs on the :io pool

  Routes apply to `Py.call/4` by module name when no `:context` or `:pool`
  option is given; a `{module, function}` route wins over a module route.
  They can also be set in config, read when `:py` starts:

      config :py, routes: %{"requests" => :io, {"model", "predict"} => :gpu}

  Routes live in `:persistent_term`: reading them costs nothing on the call
  path, changing them is meant to be rare.
  """

  @key {__MODULE__, :routes}

  @type target :: String.t() | atom | {String.t() | atom, String.t() | atom}

  @doc "Sends calls of `target` to `pool`."
  @spec route(target, atom) :: :ok
  def route(target, pool) when is_atom(pool) and pool != nil do
    :persistent_term.put(@key, Map.put(routes(), normalize(target), pool))
  end

  def route(_target, pool) do
    raise ArgumentError,
          "a route goes to a pool, named by an atom (for example :io), got: #{inspect(pool)}"
  end

  @doc "Removes the route of `target`."
  @spec unroute(target) :: :ok
  def unroute(target) do
    case Map.delete(routes(), normalize(target)) do
      empty when map_size(empty) == 0 -> :persistent_term.erase(@key)
      rest -> :persistent_term.put(@key, rest)
    end

    :ok
  end

  @doc "All routes, as `%{target => pool}`."
  @spec routes() :: map
  def routes, do: :persistent_term.get(@key, %{})

  @doc false
  # Loads `config :py, routes:` at start.
  def load do
    for {target, pool} <- Application.get_env(:py, :routes, %{}), do: route(target, pool)
    :ok
  end

  @doc false
  # The pool a request goes to.
  def pool_for({:call, module, function, _args, _kwargs, _ret}) when not is_map(module) do
    case :persistent_term.get(@key, nil) do
      nil ->
        :default

      routes ->
        module = to_string(module)

        Map.get(routes, {module, to_string(function)}) || Map.get(routes, module) || :default
    end
  end

  def pool_for({:keep_exception, request}), do: pool_for(request)
  def pool_for({:stream_start, request, _chunk_size}), do: pool_for(request)
  def pool_for(_request), do: :default

  defp normalize({module, function} = target) do
    if name?(module) and name?(function),
      do: {to_string(module), to_string(function)},
      else: bad_target!(target)
  end

  defp normalize(module), do: if(name?(module), do: to_string(module), else: bad_target!(module))

  defp name?(name), do: is_binary(name) or (is_atom(name) and name not in [nil, true, false])

  defp bad_target!(target) do
    raise ArgumentError,
          "a route target is a Python module name (\"requests\" or :requests) or a " <>
            "{module, function} pair of names, got: #{inspect(target)}"
  end
end
