defprotocol Py.Encoder do
  @moduledoc """
  How a struct of yours crosses into Python.

  py converts its own structs and Elixir's date and time structs itself;
  any other struct goes to Python as a dict of its fields (with
  `"__struct__"`). Implement this protocol to send something else: `encode/1`
  returns any value py converts (a map, a string, a `%Py.Array{}`, another
  struct...), which is then converted as usual.

      defmodule Money do
        defstruct [:amount, :currency]
      end

      defimpl Py.Encoder, for: Money do
        def encode(%Money{amount: amount}), do: %Py.Decimal{value: amount}
      end

      Py.eval("m * 2", %{m: %Money{amount: "9.99", currency: "EUR"}})
      #=> {:ok, %Py.Decimal{value: "19.98"}}

  Arguments, keyword arguments and bindings of `Py.call/4`, `Py.eval/3`
  and friends are encoded, at any depth. The cost: when the protocol has
  implementations (they are listed when protocols are consolidated, as Mix
  does by default), py walks each request's arguments once in the calling
  process; with none, nothing is walked. Values sent through `Py.Channel`
  and results from Python are not encoded. Implementations must be part of
  the project when protocols are consolidated (an implementation defined
  later, in IEx or a notebook cell after `Mix.install`, is not seen, as for
  any consolidated protocol).
  """

  @doc "The value to convert instead of `struct`."
  @spec encode(struct) :: term
  def encode(struct)
end
