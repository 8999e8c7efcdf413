defmodule Py.EncoderTest do
  use ExUnit.Case, async: true

  alias Py.Test.{Loop, Money}

  test "a struct with an implementation crosses as what encode/1 returns, at any depth" do
    price = %Money{amount: "9.99", currency: "EUR"}

    assert Py.eval("type(p['amount']).__name__, p['currency']", %{p: price}) ==
             {:ok, {"Decimal", "EUR"}}

    assert Py.call(:builtins, :len, [[price, {price}, %{"k" => [price]}]]) == {:ok, 3}

    assert Py.eval("str(items[1][0]['amount'] * 2)", %{items: [1, {price}]}) == {:ok, "19.98"}

    assert Py.call(:builtins, :str, [], kwargs: [object: price]) ==
             {:ok, "{'amount': Decimal('9.99'), 'currency': 'EUR'}"}
  end

  test "a struct without one is a dict of its fields, as before" do
    assert Py.eval("sorted(s.keys())", %{s: %URI{host: "h"}})
           |> elem(1)
           |> Enum.member?("__struct__")
  end

  test "an implementation returning its own struct does not loop" do
    assert Py.eval("s['n']", %{s: %Loop{n: 1}}) == {:ok, 1}
  end

  test "encoding also applies with exception: true and cells" do
    price = %Money{amount: "1.50", currency: "USD"}
    assert Py.eval("c = p['currency']\nc", %{p: price}, exception: true) == {:ok, "USD"}
    assert {:ok, "USD", _} = Py.eval("c = p['currency']\nc", %{p: price}, assigned: true)
  end
end
