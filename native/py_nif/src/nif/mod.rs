//! The NIFs `Py.Native` declares, one file per concern. rustler registers
//! each `#[rustler::nif]` wherever it stands; these functions check and
//! decode their arguments, hand the work to the modules that do it, and
//! encode the answer.
mod call;
mod callback;
mod channel;
mod context;
mod link;
mod observe;
mod runtime;
