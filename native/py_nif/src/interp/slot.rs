//! The parallel pool: N slots, each an OWN_GIL sub-interpreter on its own
//! thread (cargo feature `parallel`, Python 3.13+). Contexts are assigned
//! to slots round robin and keep their own globals in their slot.
//!
//! Sub-interpreter rules this code keeps (see design.md, Hazards):
//! - Thread-state sequence: a new thread state on the main interpreter,
//!   RestoreThread, `Py_NewInterpreterFromConfig` (OWN_GIL), and the slot
//!   thread stays attached to its interpreter except while it waits
//!   (SaveThread .. RestoreThread). Teardown: `Py_EndInterpreter`, then the
//!   main thread state is cleared and deleted.
//! - No Python object crosses interpreters: objects and namespaces record
//!   their interpreter and are checked where they are used; decrefs go to
//!   the owning slot; nothing here uses pyo3 statics (`intern!`, cached
//!   types), and the slot thread is attached through pyo3 for its whole life
//!   so a dropped `Py<T>` is decref'd at once, never parked in pyo3's
//!   process-global pool.
//! - Interrupts are raised inside the slot's interpreter by the runtime
//!   thread, through a thread state it keeps for that interpreter.
use crate::pyptr::PyPtr;
use crate::runtime;
use crate::worker::{Runner, SubInterrupt};
use parking_lot::Mutex;
use pyo3::ffi;
use pyo3::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

static SLOTS: Mutex<Vec<Arc<Runner>>> = Mutex::new(Vec::new());
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Starts `count` slots (once). Blocks until they are up: dirty scheduler.
pub fn start(count: usize) -> Result<(), String> {
    let mut slots = SLOTS.lock();
    while slots.len() < count {
        let index = slots.len();
        slots.push(spawn(index)?);
    }
    Ok(())
}

pub fn count() -> usize {
    SLOTS.lock().len()
}

/// The next slot, round robin.
pub fn next() -> Option<Arc<Runner>> {
    let slots = SLOTS.lock();
    if slots.is_empty() {
        return None;
    }
    let index = NEXT.fetch_add(1, Ordering::Relaxed) % slots.len();
    Some(slots[index].clone())
}

/// Ends slot `index`'s interpreter and starts a fresh one in its place.
/// Contexts on the old slot are closed by it.
pub fn recreate(index: usize) -> Result<(), String> {
    let old = {
        let slots = SLOTS.lock();
        slots
            .get(index)
            .cloned()
            .ok_or_else(|| format!("there is no slot {index}"))?
    };
    old.close();
    if !old.wait_exited(std::time::Duration::from_secs(10)) {
        return Err(format!("slot {index} did not stop"));
    }
    let fresh = spawn(index)?;
    SLOTS.lock()[index] = fresh;
    Ok(())
}

/// Puts a fresh slot in the place of `runner`'s, which is stuck (in C,
/// out of reach of interrupts). The caller then retires the old runner
/// (`Runner::retire`), which ends when its thread returns to Python (it
/// then ends its interpreter as usual). Nothing if `runner` is no longer a
/// slot (already replaced).
pub fn replace(runner: &Arc<Runner>) -> Result<(), String> {
    let index = {
        let slots = SLOTS.lock();
        match slots.iter().position(|slot| Arc::ptr_eq(slot, runner)) {
            Some(index) => index,
            None => return Ok(()),
        }
    };
    let fresh = spawn(index)?;
    let mut slots = SLOTS.lock();
    if slots
        .get(index)
        .is_some_and(|slot| Arc::ptr_eq(slot, runner))
    {
        slots[index] = fresh;
    } else {
        // Replaced meanwhile by another caller: the fresh one is not needed.
        drop(slots);
        fresh.close();
    }
    Ok(())
}

fn spawn(index: usize) -> Result<Arc<Runner>, String> {
    let (ready_tx, ready_rx) = flume::bounded::<Result<(), String>>(1);
    let runner = Runner::spawn(format!("py-slot-{index}"), move |runner, rx| {
        // SAFETY: runs on the new thread, which has no thread state yet.
        unsafe { slot_thread(runner, rx, ready_tx) }
    })?;
    ready_rx
        .recv()
        .map_err(|_| format!("slot {index} died during start-up"))??;
    Ok(runner)
}

unsafe fn slot_thread(
    runner: Arc<Runner>,
    rx: flume::Receiver<crate::worker::Msg>,
    ready: flume::Sender<Result<(), String>>,
) {
    let main_tstate = ffi::PyThreadState_New(ffi::PyInterpreterState_Main());
    ffi::PyEval_RestoreThread(main_tstate);
    let config = ffi::PyInterpreterConfig {
        use_main_obmalloc: 0,
        // `config :py, allow_fork: true` lifts CPython's own ban too.
        // allow_exec guards os.exec* only: subprocess, posix_spawn and
        // os.system work in a slot without it (checked on 3.13).
        allow_fork: crate::observe::allow_fork() as i32,
        allow_exec: crate::observe::allow_fork() as i32,
        allow_threads: 1,
        allow_daemon_threads: 0,
        check_multi_interp_extensions: 1,
        gil: ffi::PyInterpreterConfig_OWN_GIL,
    };
    let mut sub_tstate: *mut ffi::PyThreadState = std::ptr::null_mut();
    let status = ffi::Py_NewInterpreterFromConfig(&mut sub_tstate, &config);
    if ffi::PyStatus_Exception(status) != 0 || sub_tstate.is_null() {
        let _ = ready.send(Err("Py_NewInterpreterFromConfig failed".into()));
        ffi::PyThreadState_Clear(main_tstate);
        ffi::PyThreadState_DeleteCurrent();
        return;
    }
    // Now attached to the sub-interpreter, holding its own GIL.
    let interp = ffi::PyInterpreterState_Get() as usize;
    Python::attach(|py| {
        let boot = runtime::install_erlang_module(py)
            .and_then(|m| m.getattr("Interrupted"))
            .map_err(|e| crate::error::describe(py, &e))
            .and_then(|class| crate::venv::apply_at_start(py).map(|()| class))
            .inspect(|_| crate::preload::apply_at_start(py));
        match boot {
            Ok(class) => {
                *runner.interrupt.lock() = Some(SubInterrupt {
                    interpreter: interp,
                    tstate: 0,
                    class: PyPtr::new(&class),
                });
                let _ = ready.send(Ok(()));
                runner.serve(py, &rx);
                // Py_EndInterpreter joins the interpreter's threads: services
                // stop first.
                crate::threads::stop_services(py, None, false);
                crate::observe::before_interpreter_end(py);
            }
            Err(message) => {
                let _ = ready.send(Err(message));
            }
        }
        // The runtime thread's thread state for this interpreter must go
        // before the interpreter ends, deleted by the runtime thread itself.
        // Wait for that without the GIL: the runtime thread needs it (and
        // may hold the lock while it waits for it).
        let tstate = ffi::PyEval_SaveThread();
        let sub = runner.interrupt.lock().take();
        if let Some(sub) = &sub {
            if sub.tstate != 0 {
                if let Some(rt) = runtime::get() {
                    let (done, wait) = flume::bounded(1);
                    rt.send(runtime::RuntimeMsg::ForgetInterpreter {
                        tstate: sub.tstate,
                        done,
                    });
                    let _ = wait.recv();
                }
            }
        }
        ffi::PyEval_RestoreThread(tstate);
        if let Some(sub) = sub {
            sub.class.release(py);
        }
    });
    ffi::Py_EndInterpreter(sub_tstate);
    ffi::PyEval_RestoreThread(main_tstate);
    ffi::PyThreadState_Clear(main_tstate);
    ffi::PyThreadState_DeleteCurrent();
}
