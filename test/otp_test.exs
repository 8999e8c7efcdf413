defmodule Py.OTPTest do
  # The running OTP release with its patch level (settings that depend on
  # fixes in the VM are chosen by it).
  use ExUnit.Case, async: true

  test "parses OTP_VERSION texts" do
    assert Py.OTP.parse("27.3.4.1\n", "27") == [27, 3, 4, 1]
    assert Py.OTP.parse("25.2.3", "25") == [25, 2, 3]
    assert Py.OTP.parse("26.2.5-rc1", "26") == [26, 2]
    assert Py.OTP.parse("garbage", "28") == [28]
  end

  test "the running release starts with its major version, and compares as a list" do
    major = List.to_integer(:erlang.system_info(:otp_release))
    assert [^major | _] = version = Py.OTP.version()
    assert Py.OTP.at_least?([major])
    assert Py.OTP.at_least?(version)
    refute Py.OTP.at_least?([major + 1])
  end
end
