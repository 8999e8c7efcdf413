//! Dates and times, timedeltas and decimals, both ways.
//!
//! | Elixir                                  | Python                          |
//! |-----------------------------------------|---------------------------------|
//! | %Date{}                                 | datetime.date                   |
//! | %Time{}                                 | datetime.time (naive)           |
//! | %NaiveDateTime{}                        | datetime.datetime (naive)       |
//! | %DateTime{} (UTC)                       | datetime.datetime, timezone.utc |
//! | %DateTime{} (a zone, an offset)         | aware datetime: ZoneInfo(zone) when the zone exists and agrees with the offset, else a fixed-offset timezone |
//! | %Py.Timedelta{microseconds: n}          | datetime.timedelta              |
//! | %Py.Decimal{value: "1.10"}              | decimal.Decimal                 |
//!
//! Microseconds are exact both ways (Python has no finer unit). Only the ISO
//! calendar crosses. The fields are the structs' documented, public ones.
//! Python's classes are looked up in the running interpreter (each
//! sub-interpreter has its own), never through a process-wide C API pointer.
use crate::atoms;
use crate::error::{Failure, JobResult};
use pyo3::prelude::*;
use pyo3::types::PyString;
use rustler::types::tuple::get_tuple;
use rustler::{Atom, Encoder, Env, Term};

/// The Python value of an Elixir date/time struct named `tag`; None when
/// `tag` is none of them.
pub fn to_py<'py>(py: Python<'py>, term: Term, tag: Atom) -> JobResult<Option<Bound<'py, PyAny>>> {
    let value = if tag == atoms::date() {
        iso(term, "Date")?;
        let module = py.import("datetime")?;
        module.getattr("date")?.call1((
            field(term, atoms::year())?,
            field(term, atoms::month())?,
            field(term, atoms::day())?,
        ))?
    } else if tag == atoms::time() {
        iso(term, "Time")?;
        let module = py.import("datetime")?;
        module.getattr("time")?.call1((
            field(term, atoms::hour())?,
            field(term, atoms::minute())?,
            field(term, atoms::second())?,
            microsecond(term)?,
        ))?
    } else if tag == atoms::naive_date_time() {
        iso(term, "NaiveDateTime")?;
        datetime(py, term, None)?
    } else if tag == atoms::date_time() {
        iso(term, "DateTime")?;
        let tz = zone(py, term)?;
        let value = datetime(py, term, Some(&tz))?;
        // A named zone that disagrees with the struct's offset (another
        // tzdata, a gap or an overlap): the offset the struct says wins.
        let wanted = field(term, atoms::utc_offset())? + field(term, atoms::std_offset())?;
        if offset_seconds(&value)? != Some(wanted) {
            let fixed = fixed_offset(py, wanted, term)?;
            datetime(py, term, Some(&fixed))?
        } else {
            value
        }
    } else if tag == atoms::py_timedelta() {
        let micros: i64 = field(term, atoms::microseconds())?;
        let module = py.import("datetime")?;
        module
            .getattr("timedelta")?
            .call((), Some(&[("microseconds", micros)].into_py_dict(py)?))?
    } else if tag == atoms::py_decimal() {
        let text: String = term
            .map_get(atoms::value())
            .ok()
            .and_then(|v| v.decode().ok())
            .ok_or_else(|| Failure::conversion("a %Py.Decimal{} needs its value as a string"))?;
        py.import("decimal")?.getattr("Decimal")?.call1((text,))?
    } else {
        return Ok(None);
    };
    Ok(Some(value))
}

use pyo3::types::IntoPyDict;

fn iso(term: Term, what: &str) -> JobResult<()> {
    let calendar = term
        .map_get(atoms::calendar())
        .ok()
        .and_then(|c| c.decode::<Atom>().ok());
    if calendar == Some(atoms::calendar_iso()) {
        Ok(())
    } else {
        Err(Failure::conversion(format!(
            "a %{what}{{}} in a calendar other than Calendar.ISO cannot cross into Python; convert it first"
        )))
    }
}

fn field(term: Term, name: Atom) -> JobResult<i64> {
    term.map_get(name)
        .ok()
        .and_then(|v| v.decode::<i64>().ok())
        .ok_or_else(|| Failure::conversion(format!("a date/time struct without a valid {name:?}")))
}

fn microsecond(term: Term) -> JobResult<i64> {
    let value = term
        .map_get(atoms::microsecond())
        .map_err(|_| Failure::conversion("a date/time struct without microsecond"))?;
    match get_tuple(value).ok().as_deref() {
        Some([us, _precision]) => us
            .decode::<i64>()
            .map_err(|_| Failure::conversion("a date/time struct with a bad microsecond")),
        _ => Err(Failure::conversion(
            "a date/time struct with a bad microsecond",
        )),
    }
}

fn datetime<'py>(
    py: Python<'py>,
    term: Term,
    tz: Option<&Bound<'py, PyAny>>,
) -> JobResult<Bound<'py, PyAny>> {
    let module = py.import("datetime")?;
    let args = (
        field(term, atoms::year())?,
        field(term, atoms::month())?,
        field(term, atoms::day())?,
        field(term, atoms::hour())?,
        field(term, atoms::minute())?,
        field(term, atoms::second())?,
        microsecond(term)?,
    );
    let class = module.getattr("datetime")?;
    Ok(match tz {
        Some(tz) => class.call(args, Some(&[("tzinfo", tz)].into_py_dict(py)?))?,
        None => class.call1(args)?,
    })
}

/// `timezone.utc` for Etc/UTC; the zone by name (zoneinfo) when it exists;
/// else the struct's fixed offset.
fn zone<'py>(py: Python<'py>, term: Term) -> JobResult<Bound<'py, PyAny>> {
    let name: Option<String> = term
        .map_get(atoms::time_zone())
        .ok()
        .and_then(|z| z.decode().ok());
    let module = py.import("datetime")?;
    match name.as_deref() {
        Some("Etc/UTC") | Some("UTC") => Ok(module.getattr("timezone")?.getattr("utc")?),
        Some(name) => {
            let named = py
                .import("zoneinfo")
                .and_then(|z| z.getattr("ZoneInfo"))
                .and_then(|class| class.call1((name,)));
            match named {
                Ok(zone) => Ok(zone),
                Err(_) => {
                    let wanted =
                        field(term, atoms::utc_offset())? + field(term, atoms::std_offset())?;
                    fixed_offset(py, wanted, term)
                }
            }
        }
        None => Err(Failure::conversion("a %DateTime{} without a time_zone")),
    }
}

fn fixed_offset<'py>(py: Python<'py>, seconds: i64, term: Term) -> JobResult<Bound<'py, PyAny>> {
    let module = py.import("datetime")?;
    let delta = module
        .getattr("timedelta")?
        .call((), Some(&[("seconds", seconds)].into_py_dict(py)?))?;
    let abbr: Option<String> = term
        .map_get(atoms::zone_abbr())
        .ok()
        .and_then(|z| z.decode().ok());
    let timezone = module.getattr("timezone")?;
    Ok(match abbr.filter(|a| !a.is_empty()) {
        Some(abbr) => timezone.call1((delta, abbr))?,
        None => timezone.call1((delta,))?,
    })
}

fn offset_seconds(value: &Bound<'_, PyAny>) -> PyResult<Option<i64>> {
    let offset = value.call_method0("utcoffset")?;
    if offset.is_none() {
        return Ok(None);
    }
    let seconds: f64 = offset.call_method0("total_seconds")?.extract()?;
    Ok(Some(seconds as i64))
}

/// The Elixir form of a Python date, time, datetime, timedelta or Decimal;
/// None for any other object.
pub fn to_term<'a>(
    py: Python<'_>,
    env: Env<'a>,
    obj: &Bound<'_, PyAny>,
) -> JobResult<Option<Term<'a>>> {
    let module_name = obj.get_type().module()?;
    let module_name = module_name.to_str()?;
    if module_name != "datetime" && module_name != "decimal" && module_name != "_pydecimal" {
        return Ok(None);
    }
    let int = |name: &str| -> PyResult<i64> { obj.getattr(name)?.extract() };
    let iso = atoms::calendar_iso().encode(env);
    let micro = |us: i64| (us, 6).encode(env);
    if module_name != "datetime" {
        let decimal = py.import("decimal")?.getattr("Decimal")?;
        if !obj.is_instance(&decimal)? {
            return Ok(None);
        }
        let text = obj.str()?.to_string();
        return build(
            env,
            atoms::py_decimal(),
            &[(atoms::value(), text.encode(env))],
        )
        .map(Some);
    }
    let module = py.import("datetime")?;
    if obj.is_instance(&module.getattr("datetime")?)? {
        let mut pairs = vec![
            (atoms::calendar(), iso),
            (atoms::year(), int("year")?.encode(env)),
            (atoms::month(), int("month")?.encode(env)),
            (atoms::day(), int("day")?.encode(env)),
            (atoms::hour(), int("hour")?.encode(env)),
            (atoms::minute(), int("minute")?.encode(env)),
            (atoms::second(), int("second")?.encode(env)),
            (atoms::microsecond(), micro(int("microsecond")?)),
        ];
        let Some(total) = offset_seconds(obj)? else {
            return build(env, atoms::naive_date_time(), &pairs).map(Some);
        };
        let dst = obj.call_method0("dst")?;
        let std = if dst.is_none() {
            0
        } else {
            dst.call_method0("total_seconds")?.extract::<f64>()? as i64
        };
        let tzinfo = obj.getattr("tzinfo")?;
        let abbr = obj.call_method0("tzname")?;
        let abbr = if abbr.is_none() {
            String::new()
        } else {
            abbr.str()?.to_string()
        };
        let key = tzinfo
            .getattr("key")
            .ok()
            .and_then(|k| k.cast_into::<PyString>().ok())
            .map(|k| k.to_string());
        let utc = module.getattr("timezone")?.getattr("utc")?;
        let name = match key {
            Some(key) => key,
            None if tzinfo.is(&utc) || (total == 0 && abbr == "UTC") => "Etc/UTC".to_string(),
            None => abbr.clone(),
        };
        let abbr = if name == "Etc/UTC" {
            "UTC".to_string()
        } else {
            abbr
        };
        pairs.extend([
            (atoms::time_zone(), name.encode(env)),
            (atoms::zone_abbr(), abbr.encode(env)),
            (atoms::utc_offset(), (total - std).encode(env)),
            (atoms::std_offset(), std.encode(env)),
        ]);
        return build(env, atoms::date_time(), &pairs).map(Some);
    }
    if obj.is_instance(&module.getattr("date")?)? {
        let pairs = [
            (atoms::calendar(), iso),
            (atoms::year(), int("year")?.encode(env)),
            (atoms::month(), int("month")?.encode(env)),
            (atoms::day(), int("day")?.encode(env)),
        ];
        return build(env, atoms::date(), &pairs).map(Some);
    }
    if obj.is_instance(&module.getattr("time")?)? {
        // An aware time has no Elixir counterpart: it stays an object.
        if !obj.getattr("tzinfo")?.is_none() {
            return Ok(None);
        }
        let pairs = [
            (atoms::calendar(), iso),
            (atoms::hour(), int("hour")?.encode(env)),
            (atoms::minute(), int("minute")?.encode(env)),
            (atoms::second(), int("second")?.encode(env)),
            (atoms::microsecond(), micro(int("microsecond")?)),
        ];
        return build(env, atoms::time(), &pairs).map(Some);
    }
    if obj.is_instance(&module.getattr("timedelta")?)? {
        let micros = (int("days")? * 86_400 + int("seconds")?) * 1_000_000 + int("microseconds")?;
        return build(
            env,
            atoms::py_timedelta(),
            &[(atoms::microseconds(), micros.encode(env))],
        )
        .map(Some);
    }
    Ok(None)
}

fn build<'a>(env: Env<'a>, tag: Atom, pairs: &[(Atom, Term<'a>)]) -> JobResult<Term<'a>> {
    let mut all: Vec<(Term<'a>, Term<'a>)> = Vec::with_capacity(pairs.len() + 1);
    all.push((atoms::struct_().encode(env), tag.encode(env)));
    all.extend(pairs.iter().map(|(k, v)| (k.encode(env), *v)));
    Term::map_from_pairs(env, &all)
        .map_err(|_| Failure::conversion("cannot build a date/time struct"))
}
