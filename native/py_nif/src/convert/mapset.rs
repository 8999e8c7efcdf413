//! MapSet's layout, learned from Elixir when the NIF loads.
//!
//! A MapSet's fields are Elixir's private business (Elixir 1.20 dropped the
//! `version` field py once spelled out here), so py never names them.
//! `Py.Native` loads the NIF with a template, `MapSet.new([probe])`: the
//! field whose value is a map holding `probe` is where members live, the
//! probe's value there is every member's value, and every other field is
//! kept as the template has it.
use crate::atoms;
use crate::error::{Failure, JobResult};
use rustler::{Atom, Env, MapIterator, Term, TermType};
use std::sync::OnceLock;

struct Layout {
    /// The template in the external term format (with the probe as its one
    /// member, replaced when a set is built).
    template: Vec<u8>,
    /// The field that holds the members map.
    members: Atom,
    /// Each member's value in that map, in the external term format.
    member_value: Vec<u8>,
}

static LAYOUT: OnceLock<Result<Layout, String>> = OnceLock::new();

/// Learns the layout from `template` (the NIF's load info). A template of an
/// unknown shape does not stop the NIF from loading: sets then fail to
/// convert, with the reason.
pub fn learn(template: Term) {
    let _ = LAYOUT.set(layout_of(template));
}

fn layout_of(template: Term) -> Result<Layout, String> {
    let unknown = |why: &str| {
        format!(
            "py cannot convert sets on this Elixir: its MapSet layout is not one py knows ({why})"
        )
    };
    let is_mapset = template
        .map_get(atoms::struct_())
        .ok()
        .and_then(|tag| tag.decode::<Atom>().ok())
        == Some(atoms::map_set());
    if !is_mapset {
        return Err(unknown("the load info is not a MapSet"));
    }
    let iter = MapIterator::new(template).ok_or_else(|| unknown("not a map"))?;
    for (field, value) in iter {
        if value.get_type() != TermType::Map || value.map_size().ok() != Some(1) {
            continue;
        }
        if let Ok(member_value) = value.map_get(atoms::py_mapset_probe()) {
            let members = field
                .decode::<Atom>()
                .map_err(|_| unknown("a field is not an atom"))?;
            return Ok(Layout {
                template: template.to_binary().as_slice().to_vec(),
                members,
                member_value: member_value.to_binary().as_slice().to_vec(),
            });
        }
    }
    Err(unknown("no field holds the members"))
}

fn layout() -> JobResult<&'static Layout> {
    match LAYOUT.get() {
        Some(Ok(layout)) => Ok(layout),
        Some(Err(why)) => Err(Failure::conversion(why.clone())),
        None => Err(Failure::conversion(
            "py cannot convert sets: the NIF was loaded without a MapSet template",
        )),
    }
}

/// The members map of a MapSet term (its keys are the members).
pub fn members(term: Term) -> JobResult<Term> {
    let layout = layout()?;
    term.map_get(layout.members)
        .map_err(|_| Failure::conversion("malformed MapSet"))
}

/// A MapSet of `members`, which must be distinct terms.
pub fn build<'a>(env: Env<'a>, members: Vec<Term<'a>>) -> JobResult<Term<'a>> {
    let layout = layout()?;
    let decode = |bytes: &[u8]| {
        env.binary_to_term(bytes)
            .map(|(term, _)| term)
            .ok_or_else(|| Failure::conversion("cannot build MapSet"))
    };
    let template = decode(&layout.template)?;
    let value = decode(&layout.member_value)?;
    let count = members.len();
    let mut map = Term::map_new(env);
    for member in members {
        map = map
            .map_put(member, value)
            .map_err(|_| Failure::conversion("cannot build MapSet"))?;
    }
    if map.map_size().ok() != Some(count) {
        return Err(Failure::conversion(
            "two members of a Python set become the same Elixir term (for example 'a' and b'a'); make the members distinct",
        ));
    }
    template
        .map_put(layout.members, map)
        .map_err(|_| Failure::conversion("cannot build MapSet"))
}
