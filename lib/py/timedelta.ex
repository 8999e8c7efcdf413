defmodule Py.Timedelta do
  @moduledoc """
  A Python `datetime.timedelta`, exact to the microsecond (Python has no
  finer unit). Python timedeltas come back as this struct, and it goes to
  Python as a timedelta.

      iex> Py.eval("__import__('datetime').timedelta(days=1, microseconds=5)")
      {:ok, %Py.Timedelta{microseconds: 86_400_000_005}}

      iex> Py.eval("d.total_seconds()", %{d: Py.Timedelta.new(90, :second)})
      {:ok, 90.0}
  """

  @enforce_keys [:microseconds]
  defstruct [:microseconds]

  @type t :: %__MODULE__{microseconds: integer}

  @doc "A timedelta of `amount` `unit`s (`:microsecond`, `:millisecond`, `:second`)."
  @spec new(integer, :microsecond | :millisecond | :second) :: t
  def new(amount, unit \\ :microsecond) when is_integer(amount) do
    %__MODULE__{microseconds: System.convert_time_unit(amount, unit, :microsecond)}
  end

  @doc "The length in `unit` (rounded toward negative infinity, as `System.convert_time_unit/3`)."
  @spec to(t, :microsecond | :millisecond | :second) :: integer
  def to(%__MODULE__{microseconds: us}, unit \\ :microsecond),
    do: System.convert_time_unit(us, :microsecond, unit)
end
