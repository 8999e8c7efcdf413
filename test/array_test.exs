defmodule Py.ArrayTest do
  # %Py.Array{}: buffer-protocol objects to bytes, type and shape, and back.
  use ExUnit.Case, async: true

  doctest Py.Array

  test "array.array and bytes come back with their type and shape" do
    assert Py.eval("__import__('array').array('d', [1.0, -2.5])", %{}, return: :array) ==
             {:ok,
              %Py.Array{
                data: <<1.0::float-64-native, -2.5::float-64-native>>,
                type: {:f, 64},
                shape: {2}
              }}

    assert Py.eval("b'abc'", %{}, return: :array) ==
             {:ok, %Py.Array{data: "abc", type: {:u, 8}, shape: {3}}}
  end

  test "an object without the buffer protocol is a clear error" do
    assert {:error, %Py.Error{kind: :conversion, message: msg}} =
             Py.eval("[1, 2]", %{}, return: :array)

    assert msg =~ "buffer protocol"
  end

  test "a malformed %Py.Array{} is a clear error" do
    bad = %Py.Array{data: <<1, 2, 3>>, type: {:f, 32}, shape: {1}}
    assert {:error, %Py.Error{kind: :conversion, message: msg}} = Py.eval("a", %{a: bad})
    assert msg =~ "3 bytes of data do not make shape"

    assert {:error, %Py.Error{kind: :conversion, message: msg}} =
             Py.eval("a", %{a: %Py.Array{data: <<0, 0>>, type: {:bf, 16}, shape: {1}}})

    assert msg =~ "no Python element type"
  end

  test "a bad :return option raises" do
    assert_raise ArgumentError, ~r/:auto, :object or :array/, fn ->
      Py.eval("1", %{}, return: :nope)
    end
  end

  describe "with numpy" do
    @describetag :numpy

    # numpy loads only in the main interpreter (not in the parallel pool's
    # sub-interpreters).
    setup do
      ctx = start_supervised!({Py.Context, interpreter: :main})
      :ok = Py.Context.exec(ctx, "import numpy")
      %{ctx: ctx}
    end

    test "a float32 matrix becomes data, {:f, 32} and its shape, in C order", %{ctx: ctx} do
      {:ok, array} =
        Py.Context.eval(ctx, "numpy.arange(6, dtype='float32').reshape(2, 3)", %{}, return: :array)

      assert array.type == {:f, 32}
      assert array.shape == {2, 3}
      assert array.data == for(i <- 0..5, into: <<>>, do: <<i * 1.0::float-32-native>>)
    end

    test "a strided (transposed) view is copied into C order", %{ctx: ctx} do
      {:ok, array} =
        Py.Context.eval(ctx, "numpy.arange(6, dtype='int64').reshape(2, 3).T", %{}, return: :array)

      assert array.shape == {3, 2}
      assert array.type == {:s, 64}
      assert array.data == for(i <- [0, 3, 1, 4, 2, 5], into: <<>>, do: <<i::signed-64-native>>)
    end

    test "types map to Nx's spelling", %{ctx: ctx} do
      for {dtype, type} <- [
            {"float16", {:f, 16}},
            {"float64", {:f, 64}},
            {"int8", {:s, 8}},
            {"int16", {:s, 16}},
            {"int32", {:s, 32}},
            {"uint16", {:u, 16}},
            {"uint32", {:u, 32}},
            {"uint64", {:u, 64}},
            {"bool", {:u, 8}},
            {"complex64", {:c, 64}}
          ] do
        assert {:ok, %Py.Array{type: ^type, shape: {2}}} =
                 Py.Context.eval(ctx, "numpy.zeros(2, dtype='#{dtype}')", %{}, return: :array)
      end
    end

    test "a %Py.Array{} becomes a writable numpy array, and round trips", %{ctx: ctx} do
      {:ok, original} =
        Py.Context.eval(ctx, "numpy.random.rand(4, 5).astype('float32')", %{}, return: :array)

      assert Py.Context.eval(ctx, "type(a).__name__, a.dtype.name, a.shape, a.flags.writeable", %{
               a: original
             }) ==
               {:ok, {"ndarray", "float32", {4, 5}, true}}

      assert Py.Context.eval(ctx, "a", %{a: original}, return: :array) == {:ok, original}
    end

    test "a scalar has the shape {}", %{ctx: ctx} do
      assert Py.Context.eval(ctx, "numpy.array(7, dtype='int32')", %{}, return: :array) ==
               {:ok, %Py.Array{data: <<7::signed-32-native>>, type: {:s, 32}, shape: {}}}
    end

    test "Py.Array.from_object/2 reads an object handle", %{ctx: ctx} do
      {:ok, eye} = Py.Context.eval(ctx, "numpy.eye(2, dtype='float64')", %{}, return: :object)

      assert Py.Array.from_object(eye, context: ctx) ==
               {:ok,
                %Py.Array{
                  data:
                    <<1.0::float-64-native, 0.0::float-64-native, 0.0::float-64-native,
                      1.0::float-64-native>>,
                  type: {:f, 64},
                  shape: {2, 2}
                }}
    end
  end
end
