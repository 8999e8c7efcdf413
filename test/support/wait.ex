defmodule Py.Test.Wait do
  @moduledoc false
  # For conditions no message announces (state in another OS process or on
  # another node): checks `fun` every 25 ms, up to `tries` times, and fails
  # the test if it never holds.

  def wait_until(fun, tries \\ 400) do
    cond do
      fun.() -> :ok
      tries == 0 -> ExUnit.Assertions.flunk("condition not reached")
      true -> receive(after: (25 -> wait_until(fun, tries - 1)))
    end
  end
end
