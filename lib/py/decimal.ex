defmodule Py.Decimal do
  @moduledoc """
  A Python `decimal.Decimal`, kept exactly as its decimal string (py has no
  decimal arithmetic of its own, and no dependency that has). Python
  Decimals come back as this struct, and it goes to Python as a Decimal.
  With the `decimal` package in your project: `Decimal.new(value)`.

      iex> Py.eval("__import__('decimal').Decimal('1.10') * 3")
      {:ok, %Py.Decimal{value: "3.30"}}

      iex> Py.eval("d + 1", %{d: %Py.Decimal{value: "0.1"}})
      {:ok, %Py.Decimal{value: "1.1"}}
  """

  @enforce_keys [:value]
  defstruct [:value]

  @type t :: %__MODULE__{value: String.t()}
end
