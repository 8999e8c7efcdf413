defmodule Py.Test.Money do
  @moduledoc false
  # A struct with a Py.Encoder implementation, for test/encoder_test.exs
  # (in test/support so that protocol consolidation sees it).
  defstruct [:amount, :currency]
end

defimpl Py.Encoder, for: Py.Test.Money do
  def encode(%Py.Test.Money{amount: amount, currency: currency}),
    do: %{"amount" => %Py.Decimal{value: amount}, "currency" => currency}
end

defmodule Py.Test.Loop do
  @moduledoc false
  defstruct [:n]
end

defimpl Py.Encoder, for: Py.Test.Loop do
  # Returns its own kind: sent as is (a dict), not encoded again forever.
  def encode(loop), do: loop
end
