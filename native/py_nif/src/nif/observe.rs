//! Observability settings: logging, tracing, the event sink.
use crate::atoms;
use crate::observe;
use rustler::LocalPid;

/// Settings each interpreter reads as it starts: the log level (Python's
/// level number, -1 for off), tracing on or off, whether Python code may
/// fork or exec, and whether it may end or signal the VM's process (the
/// process guard off). Call before `runtime_start`.
#[rustler::nif]
fn observe_configure(
    log_level: i64,
    tracing: bool,
    allow_fork: bool,
    allow_process_exit: bool,
) -> rustler::Atom {
    observe::configure(log_level, tracing, allow_fork, allow_process_exit);
    atoms::ok()
}

/// Changes the forwarded log level; each interpreter applies it before its
/// next call.
#[rustler::nif]
fn log_level_set(level: i64) -> rustler::Atom {
    observe::set_log_level(level);
    atoms::ok()
}

#[rustler::nif]
fn tracing_set(on: bool) -> rustler::Atom {
    observe::set_tracing(on);
    atoms::ok()
}

/// The process that receives events from Python threads outside any call
/// (`nil` to drop them).
#[rustler::nif]
fn sink_set(pid: Option<LocalPid>) -> rustler::Atom {
    observe::set_sink(pid);
    atoms::ok()
}
