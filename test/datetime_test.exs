defmodule Py.DateTimeTest do
  # Dates, times, timedeltas and decimals cross both ways, microseconds
  # exact.
  use ExUnit.Case, async: true

  doctest Py.Timedelta
  doctest Py.Decimal

  setup do
    :ok = Py.exec("import datetime, decimal, zoneinfo")
    :ok
  end

  test "Date, Time, NaiveDateTime go to datetime's types and back" do
    date = ~D[2024-02-29]
    time = ~T[23:59:58.123456]
    naive = ~N[2024-02-29 23:59:58.000001]

    assert Py.eval("type(d).__name__, d.isoformat()", %{d: date}) == {:ok, {"date", "2024-02-29"}}
    assert Py.eval("type(t).__name__, t.microsecond", %{t: time}) == {:ok, {"time", 123_456}}

    assert Py.eval("type(n).__name__, n.tzinfo is None, n.microsecond", %{n: naive}) ==
             {:ok, {"datetime", true, 1}}

    assert Py.eval("d", %{d: date}) == {:ok, date}
    assert Py.eval("t", %{t: time}) == {:ok, time}
    assert Py.eval("n", %{n: naive}) == {:ok, naive}
  end

  test "Python values come back as Elixir structs" do
    assert Py.eval("datetime.date(1999, 12, 31)") == {:ok, ~D[1999-12-31]}
    assert Py.eval("datetime.time(1, 2, 3, 4)") == {:ok, ~T[01:02:03.000004]}

    assert Py.eval("datetime.datetime(2020, 1, 2, 3, 4, 5, 6)") ==
             {:ok, ~N[2020-01-02 03:04:05.000006]}
  end

  test "a UTC DateTime is an aware datetime in timezone.utc, and back" do
    dt = ~U[2024-05-06 07:08:09.101112Z]

    assert Py.eval("d.tzinfo is datetime.timezone.utc, d.isoformat()", %{d: dt}) ==
             {:ok, {true, "2024-05-06T07:08:09.101112+00:00"}}

    assert Py.eval("d", %{d: dt}) == {:ok, dt}

    assert Py.eval("datetime.datetime(2024, 5, 6, 7, 8, 9, 101112, tzinfo=datetime.timezone.utc)") ==
             {:ok, dt}
  end

  test "a fixed offset crosses as one" do
    {:ok, dt} =
      Py.eval(
        "datetime.datetime(2024, 1, 1, 12, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=5, minutes=30)))"
      )

    assert %DateTime{hour: 12, utc_offset: 19_800, std_offset: 0} = dt
    assert Py.eval("d.utcoffset().total_seconds(), d.hour", %{d: dt}) == {:ok, {19_800.0, 12}}
  end

  test "a named zone comes back with its name, offsets and abbreviation, and goes as ZoneInfo" do
    {:ok, dt} =
      Py.eval("datetime.datetime(2024, 7, 1, 12, 0, tzinfo=zoneinfo.ZoneInfo('Europe/Paris'))")

    assert %DateTime{
             time_zone: "Europe/Paris",
             zone_abbr: "CEST",
             utc_offset: 3600,
             std_offset: 3600
           } = dt

    assert Py.eval("type(d.tzinfo).__name__, d.tzinfo.key, d.utcoffset().total_seconds()", %{
             d: dt
           }) ==
             {:ok, {"ZoneInfo", "Europe/Paris", 7200.0}}
  end

  test "a DateTime whose zone Python does not know keeps its offset" do
    dt = %DateTime{
      year: 2024,
      month: 1,
      day: 1,
      hour: 0,
      minute: 0,
      second: 0,
      microsecond: {0, 0},
      time_zone: "Not/AZone",
      zone_abbr: "XYZ",
      utc_offset: -3600,
      std_offset: 0
    }

    assert Py.eval("d.utcoffset().total_seconds(), d.tzname()", %{d: dt}) ==
             {:ok, {-3600.0, "XYZ"}}
  end

  test "timedelta is %Py.Timedelta{}, both ways, negative ones too" do
    assert Py.eval("datetime.timedelta(days=-1, seconds=1)") ==
             {:ok, %Py.Timedelta{microseconds: -86_399_000_000}}

    assert Py.eval("t == datetime.timedelta(milliseconds=1500)", %{
             t: Py.Timedelta.new(1500, :millisecond)
           }) ==
             {:ok, true}

    assert Py.Timedelta.to(Py.Timedelta.new(90, :second), :millisecond) == 90_000
  end

  test "Decimal is %Py.Decimal{}, both ways" do
    assert Py.eval("decimal.Decimal('-0.000100')") == {:ok, %Py.Decimal{value: "-0.000100"}}
    assert Py.eval("d.as_tuple().exponent", %{d: %Py.Decimal{value: "12.345"}}) == {:ok, -3}
  end

  test "another calendar is a clear error" do
    date = %{~D[2024-01-01] | calendar: Calendar.Fake}

    assert {:error, %Py.Error{kind: :conversion, message: msg}} = Py.eval("d", %{d: date})
    assert msg =~ "Calendar.ISO"
  end

  test "an aware time stays an object" do
    assert {:ok, %Py.Object{}} = Py.eval("datetime.time(1, tzinfo=datetime.timezone.utc)")
  end
end
