//! Whether a term is small enough to copy on a scheduler thread.
//!
//! A request, a callback's result and a channel message are copied into an
//! env of their own (`enif_make_copy`) by the NIF that receives them, and
//! that copy cannot yield: a 1,000,000-integer list took 11-18 ms, far past
//! the millisecond a NIF may hold a scheduler. So those NIFs first walk the
//! term, counting about the words a copy makes, and stop at `BUDGET`. A
//! term past it (or nested deeper than `DEPTH`, or holding an integer past
//! 64 bits or a fun, whose sizes the walk cannot see) is not copied there:
//! the NIF answers `:large` and its caller repeats the call on a dirty
//! scheduler (the `*_large` NIFs, `Py.Native.Large`). Walking costs at
//! most `BUDGET` steps; a short call's request is about fifteen NIF API
//! calls.
use rustler::sys::{enif_get_tuple, ErlNifTerm};
use rustler::{Binary, MapIterator, Term, TermType};

/// The most a scheduler thread walks and copies, in words (a list cell
/// and a small integer in it count 3): a list of about 5,000 integers
/// (100 us or so here, walk and copy); the walk of a short call's request
/// is about 0.15 us.
pub const BUDGET: isize = 16_384;

/// Deeper terms are taken for large: the walk recurses, and on a scheduler
/// thread its stack must stay small.
const DEPTH: usize = 48;

/// Binaries up to this size are copied (heap binaries); larger ones are
/// shared by reference.
const HEAP_BINARY: usize = 64;

/// Whether copying `term` stays within `BUDGET` words.
pub fn cheap(term: Term) -> bool {
    let mut left = BUDGET;
    fits(term, &mut left, 0)
}

/// Takes `term`'s words from `left`; false once it runs out or the term is
/// too deep.
fn fits(term: Term, left: &mut isize, depth: usize) -> bool {
    if depth > DEPTH {
        return false;
    }
    match term.get_type() {
        TermType::Atom => *left -= 1,
        // An integer past 64 bits can be any size, and its size cannot be
        // read without decoding it: it is taken for large, as is a fun,
        // whose environment can hold anything.
        TermType::Integer if term.decode::<i64>().is_ok() => *left -= 1,
        TermType::Integer | TermType::Fun => return false,
        TermType::Float => *left -= 3,
        TermType::List => return list_fits(term, left, depth),
        TermType::Tuple => {
            let Some(items) = tuple_items(term) else {
                return false;
            };
            *left -= 1 + items.len() as isize;
            for &item in items {
                // SAFETY: an item of a live tuple of `term`'s env.
                let item = unsafe { Term::new(term.get_env(), item) };
                if *left < 0 || !fits(item, left, depth + 1) {
                    return false;
                }
            }
        }
        TermType::Map => {
            let size = term.map_size().unwrap_or(0) as isize;
            *left -= 3 + 3 * size;
            if *left < 0 {
                return false;
            }
            let Some(entries) = MapIterator::new(term) else {
                return false;
            };
            for (key, value) in entries {
                if !fits(key, left, depth + 1) || !fits(value, left, depth + 1) {
                    return false;
                }
            }
        }
        TermType::Binary => {
            *left -= match Binary::from_term(term) {
                Ok(bin) if bin.len() <= HEAP_BINARY => 2 + bin.len() as isize / 8,
                _ => 8,
            }
        }
        // Pids, references and ports: a few words each.
        _ => *left -= 8,
    }
    *left >= 0
}

/// A list's cells and items, its tail included (an improper list's).
fn list_fits(term: Term, left: &mut isize, depth: usize) -> bool {
    let mut rest = term;
    while let Ok((head, tail)) = rest.list_get_cell() {
        *left -= 2;
        if *left < 0 || !fits(head, left, depth + 1) {
            return false;
        }
        rest = tail;
    }
    if rest.is_empty_list() {
        return true;
    }
    fits(rest, left, depth + 1)
}

/// A tuple's items, borrowed from the tuple: rustler's `get_tuple` copies
/// them into a new vector, an allocation per tuple on every request.
fn tuple_items<'a>(term: Term<'a>) -> Option<&'a [ErlNifTerm]> {
    let mut arity = 0;
    let mut items: *const ErlNifTerm = std::ptr::null();
    // SAFETY: `term` is a live term of its env; on success `items` points
    // at the tuple's `arity` items, which live as long as the term.
    unsafe {
        if enif_get_tuple(
            term.get_env().as_c_arg(),
            term.as_c_arg(),
            &mut arity,
            &mut items,
        ) != 1
        {
            return None;
        }
        if arity <= 0 || items.is_null() {
            return Some(&[]);
        }
        Some(std::slice::from_raw_parts(items, arity as usize))
    }
}
