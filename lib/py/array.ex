defmodule Py.Array do
  @moduledoc """
  An n-dimensional array's bytes, element type and shape, to build an Nx
  tensor from a numpy array and back, without per-element work.

    * `:data` - the elements in C (row-major) order, native byte order
    * `:type` - the element type as Nx spells it: `{:f, 16 | 32 | 64}`,
      `{:s, 8 | 16 | 32 | 64}`, `{:u, 8 | 16 | 32 | 64}`, `{:c, 64 | 128}`
      (numpy's bool comes as `{:u, 8}`)
    * `:shape` - a tuple of sizes (`{}` for a scalar)

  Any Python object with the buffer protocol (a numpy array, `array.array`,
  `bytes`, a memoryview) comes back as one with `return: :array`, its data
  copied once:

      iex> {:ok, array} = Py.eval("memoryview(bytes(range(6))).cast('B', (2, 3))", %{}, return: :array)
      iex> array
      %Py.Array{data: <<0, 1, 2, 3, 4, 5>>, type: {:u, 8}, shape: {2, 3}}

  and a `%Py.Array{}` goes to Python as a numpy array (writable, over one
  copy of the data) when numpy imports there, else as a memoryview of that
  type and shape:

      iex> array = %Py.Array{data: <<1.5::float-32-native, 2.5::float-32-native>>, type: {:f, 32}, shape: {2}}
      iex> Py.eval("a.tolist()", %{a: array})
      {:ok, [1.5, 2.5]}

  With Nx: `Nx.from_binary(array.data, array.type) |> Nx.reshape(array.shape)`,
  and back `%Py.Array{data: Nx.to_binary(t), type: Nx.type(t), shape: Nx.shape(t)}`.
  """

  @enforce_keys [:data, :type, :shape]
  defstruct [:data, :type, :shape]

  @type t :: %__MODULE__{data: binary, type: {atom, pos_integer}, shape: tuple}

  @doc """
  The `%Py.Array{}` of a `%Py.Object{}` with the buffer protocol.

      {:ok, matrix} = Py.eval("numpy.eye(3, dtype='float32')", %{}, return: :object)
      {:ok, %Py.Array{type: {:f, 32}, shape: {3, 3}}} = Py.Array.from_object(matrix)
  """
  @spec from_object(Py.Object.t(), keyword) :: {:ok, t} | {:error, Py.Error.t()}
  def from_object(%Py.Object{} = object, opts \\ []) do
    Py.eval("a", %{a: object}, Keyword.put(opts, :return, :array))
  end
end
