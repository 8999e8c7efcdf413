defmodule Py.PreloadTest do
  # Py.preload/1: paths, code and imports in every interpreter. Not async:
  # preloads are VM-wide and add up.
  use ExUnit.Case, async: false

  defp unique(prefix), do: "#{prefix}_#{System.unique_integer([:positive])}"

  # A directory of the repository (it must outlive the test: preloads are
  # replayed in every interpreter made later in this VM).
  @dir Path.expand("support/preload", __DIR__)

  defp preload! do
    dir = @dir
    module = "py_preload_probe"
    function = unique("py_preload_fn")

    :ok =
      Py.preload(
        paths: [dir],
        code: "def #{function}(x):\n    return 3 * x\n",
        imports: ["colorsys", module]
      )

    %{module: module, function: function}
  end

  defp sees_preload?(run, %{module: module, function: function}) do
    run.("__import__('sys').modules[m].VALUE", %{"m" => module}) ==
      {:ok, "from the preload path"} and
      run.("'colorsys' in __import__('sys').modules", %{}) == {:ok, true} and
      run.("getattr(__import__('__main__'), f)(2)", %{"f" => function}) == {:ok, 6}
  end

  test "the main interpreter gets it at once; __main__ functions are callable" do
    %{function: function} = preload = preload!()
    assert sees_preload?(&Py.eval/2, preload)
    assert Py.call(:__main__, function, [5]) == {:ok, 15}
  end

  test "an isolated context's process gets the preloads, before and after it starts" do
    before = start_supervised!({Py.Context, isolation: :os_process}, id: :before)
    first = preload!()
    later = start_supervised!({Py.Context, isolation: :os_process}, id: :later)
    second = preload!()

    for ctx <- [before, later], preload <- [first, second] do
      assert sees_preload?(&Py.Context.eval(ctx, &1, &2), preload)
    end
  end

  @tag :parallel
  test "every sub-interpreter slot gets it, and slots made later" do
    preload = preload!()

    for {:ok, ctx} <- for(_ <- 1..(2 * Py.info().slots), do: Py.Context.start_link()) do
      assert sees_preload?(&Py.Context.eval(ctx, &1, &2), preload)
    end

    assert Py.Native.slot_recreate(0) == :ok

    for {:ok, ctx} <- for(_ <- 1..(2 * Py.info().slots), do: Py.Context.start_link()) do
      assert sees_preload?(&Py.Context.eval(ctx, &1, &2), preload)
    end
  end

  test "a preload that fails in the main interpreter is an error, and is not kept" do
    assert {:error, %Py.Error{message: message}} = Py.preload(code: "1 / 0")
    assert message =~ "ZeroDivisionError"

    assert Enum.all?(Application.get_env(:py, :preloaded, []), fn {_, _, code} ->
             code != "1 / 0"
           end)
  end

  test "bad options raise ArgumentError" do
    for opts <- [[paths: "not a list"], [imports: [1]], [code: :atom], [other: 1]] do
      assert_raise ArgumentError, fn -> Py.preload(Process.get(:none, opts)) end
    end
  end
end
