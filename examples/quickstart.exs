# A tour of py. Run with `make demo` (or `mix run examples/quickstart.exs`).

section = fn title -> IO.puts("\n== " <> title) end
show = fn label, value -> IO.puts(String.pad_trailing(label, 34) <> inspect(value)) end

section.("Runtime")
info = Py.info()
show.("python", "#{info.python_version} (#{info.executable})")
show.("mode / pool contexts", {info.mode, info.pool_size})

section.("Calls and expressions")
show.("Py.call(:math, :sqrt, [2.0])", Py.call(:math, :sqrt, [2.0]))
show.("Py.eval(\"x * y\", %{x: 6, y: 7})", Py.eval("x * y", %{x: 6, y: 7}))

show.(
  "json.dumps(..., sort_keys: true)",
  Py.call(:json, :dumps, [%{"b" => [1, 2.5, nil], "a" => true}], kwargs: [sort_keys: true])
)

section.("This process's namespace")
:ok = Py.exec("def greet(name):\n    return f'hello, {name}'")
show.("greet(\"Elixir\")", Py.eval("greet(name)", %{name: "Elixir"}))
{:error, other} = Task.async(fn -> Py.eval("greet('x')") end) |> Task.await()
show.("...from another process", other.type <> ": " <> other.message)

section.("A context of its own, with state")
{:ok, ctx} = Py.Context.start_link()
:ok = Py.Context.exec(ctx, "import collections\ncounts = collections.Counter()")
for word <- ~w(a b a c a), do: Py.Context.eval(ctx, "counts.update([w])", %{w: word})
show.("counts.most_common(2)", Py.Context.eval(ctx, "counts.most_common(2)"))

section.("Python objects as handles")
{:ok, deque} = Py.call(:collections, :deque, [[1, 2, 3]], kwargs: [maxlen: 3])
show.("deque", deque)
{:ok, nil} = Py.call_method(deque, :append, [4])
show.("after append(4)", Py.call(:builtins, :list, [deque]))

section.("Errors")
{:error, error} = Py.eval("int('forty-two')")
show.("type", error.type)
show.("message", error.message)

section.("Timeouts interrupt Python")

show.(
  "while True: pass (timeout 300)",
  Py.exec("while True: pass", timeout: 300) |> elem(1) |> Map.get(:kind)
)

show.("next call on the same context", Py.eval("1 + 1"))

section.("print goes to the caller's group leader")
Py.exec("print('this line was printed by Python')")

section.("numpy")

case Py.eval("__import__('numpy').__version__") do
  {:ok, version} ->
    {:ok, array} = Py.eval("__import__('numpy').arange(12).reshape(3, 4)")
    show.("numpy", version)
    show.("arange(12).reshape(3, 4)", array)

    show.(
      "its sum",
      Py.call_method(array, :sum, []) |> then(fn {:ok, s} -> Py.call_method(s, :item, []) end)
    )

  {:error, _} ->
    IO.puts("numpy is not installed for this Python: skipped")
end

section.("Many processes at once")

results =
  1..100
  |> Enum.map(fn i ->
    Task.async(fn -> for j <- 1..10, do: Py.call!(:operator, :mul, [i, j]) end)
  end)
  |> Enum.flat_map(&Task.await/1)

show.("100 processes x 10 calls", "#{length(results)} answers, sum #{Enum.sum(results)}")
