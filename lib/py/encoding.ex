defmodule Py.Encoding do
  @moduledoc false
  # Applies Py.Encoder to the values of a request before it is sent, when
  # the protocol has implementations (see Py.Encoder's doc for the cost).

  @doc "The request with its arguments and bindings encoded."
  def request(request) do
    if encoders?(), do: encode_request(request), else: request
  end

  defp encoders? do
    case Py.Encoder.__protocol__(:impls) do
      {:consolidated, []} -> false
      _ -> true
    end
  end

  defp encode_request({:keep_exception, inner}), do: {:keep_exception, encode_request(inner)}

  defp encode_request({:stream_start, inner, size}),
    do: {:stream_start, encode_request(inner), size}

  defp encode_request({:call, target, function, args, kwargs, ret}),
    do: {:call, target, function, encode(args), encode(kwargs), ret}

  defp encode_request({:eval, code, bindings, ret}), do: {:eval, code, encode(bindings), ret}

  defp encode_request({:cell, code, bindings, ret, assigned}),
    do: {:cell, code, encode(bindings), ret, assigned}

  defp encode_request(other), do: other

  @doc "A value with every struct that has a Py.Encoder implementation encoded."
  def encode(%{__struct__: module} = struct) do
    # Through apply/3: with no implementation (the protocol consolidated
    # empty, as in most apps) Elixir 1.20's type checker knows impl_for/1
    # returns nil and warns about the clause below, though this function
    # only runs when there are implementations (see request/1).
    case apply(Py.Encoder, :impl_for, [struct]) do
      nil -> struct
      impl -> impl.encode(struct) |> encode_unless_same(struct, module)
    end
  end

  def encode(map) when is_map(map), do: Map.new(map, fn {k, v} -> {encode(k), encode(v)} end)
  def encode(list) when is_list(list), do: encode_list(list)

  def encode(tuple) when is_tuple(tuple),
    do: tuple |> Tuple.to_list() |> Enum.map(&encode/1) |> List.to_tuple()

  def encode(other), do: other

  # An implementation that returns a struct of the same module would loop.
  defp encode_unless_same(%{__struct__: module} = value, _struct, module), do: value
  defp encode_unless_same(value, _struct, _module), do: encode(value)

  # Improper lists keep their tail.
  defp encode_list([head | tail]), do: [encode(head) | encode_list(tail)]
  defp encode_list([]), do: []
  defp encode_list(tail), do: encode(tail)
end
