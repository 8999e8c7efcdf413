//! Interpreter start-up and the runtime thread.
//!
//! The interpreter is initialised once, on a dedicated long-lived thread
//! (`py-runtime`), with Python's signal handlers off so the BEAM keeps its
//! signals. That thread then serves requests that need the GIL but belong to
//! no context: interrupting a running job, and releasing objects whose
//! context is gone.
use crate::io;
use crate::pyptr::PyPtr;
use crate::worker::Runner;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};
use std::ffi::{CStr, CString};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};

pub enum RuntimeMsg {
    /// Raise `erlang.Interrupted` in the runner's thread if it still runs `job`.
    Interrupt { runner: Arc<Runner>, job: u64 },
    /// Decref an object whose owning context has ended.
    Release(PyPtr),
    /// Delete this thread's thread state in a sub-interpreter that is about
    /// to end (a thread state is deleted by the thread that uses it).
    #[cfg(all(feature = "parallel", Py_3_12))]
    ForgetInterpreter {
        tstate: usize,
        done: flume::Sender<()>,
    },
}

pub struct Runtime {
    tx: flume::Sender<RuntimeMsg>,
    pub version: String,
    pub libpython: String,
    /// `erlang.Interrupted`, kept alive for the life of the process.
    interrupted: PyPtr,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
static START: Mutex<()> = Mutex::new(());

pub fn get() -> Option<&'static Runtime> {
    RUNTIME.get()
}

impl Runtime {
    pub fn send(&self, msg: RuntimeMsg) {
        // The runtime thread never exits, so this cannot fail in practice;
        // if it did, the message (an interrupt or a decref) is dropped.
        let _ = self.tx.send(msg);
    }
}

/// Starts the interpreter (once). Blocks until it is up: call from a dirty
/// scheduler.
pub fn start(executable: &str) -> Result<&'static Runtime, String> {
    let _guard = START
        .lock()
        .map_err(|_| "runtime start lock poisoned".to_string())?;
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let libpython = promote_libpython()?;
    let exe =
        CString::new(executable).map_err(|_| "python path contains a NUL byte".to_string())?;
    let (ready_tx, ready_rx) = flume::bounded::<Result<(String, PyPtr), String>>(1);
    let (tx, rx) = flume::unbounded::<RuntimeMsg>();
    std::thread::Builder::new()
        .name("py-runtime".into())
        .stack_size(crate::worker::STACK_SIZE)
        .spawn(move || runtime_thread(exe, ready_tx, rx))
        .map_err(|e| format!("cannot spawn the runtime thread: {e}"))?;
    let (version, interrupted) = ready_rx
        .recv()
        .map_err(|_| "the runtime thread died during start-up".to_string())??;
    let _ = RUNTIME.set(Runtime {
        tx,
        version,
        libpython,
        interrupted,
    });
    RUNTIME.get().ok_or_else(|| "runtime not set".to_string())
}

fn runtime_thread(
    exe: CString,
    ready: flume::Sender<Result<(String, PyPtr), String>>,
    rx: flume::Receiver<RuntimeMsg>,
) {
    // SAFETY: runs once, before any other thread touches Python.
    if let Err(e) = unsafe { initialize(&exe) } {
        let _ = ready.send(Err(e));
        return;
    }
    let boot = Python::attach(|py| -> Result<(String, PyPtr), String> {
        let erlang = install_erlang_module(py).map_err(|e| crate::error::describe(py, &e))?;
        let interrupted = erlang
            .getattr("Interrupted")
            .map_err(|e| crate::error::describe(py, &e))?;
        // Made here, in the main interpreter, before any sub-interpreter can
        // make pyo3 create it (pyo3 checks every fetched error against it).
        let _ = py.get_type::<pyo3::panic::PanicException>();
        let version = Python::version_str()
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string();
        Ok((version, PyPtr::new(&interrupted)))
    });
    let failed = boot.is_err();
    let _ = ready.send(boot);
    if failed {
        return;
    }
    Python::attach(|py| loop {
        let msg = match py.detach(|| rx.recv()) {
            Ok(msg) => msg,
            Err(_) => return,
        };
        match msg {
            RuntimeMsg::Release(ptr) => ptr.release(py),
            RuntimeMsg::Interrupt { runner, job } => interrupt(py, &runner, job),
            #[cfg(all(feature = "parallel", Py_3_12))]
            RuntimeMsg::ForgetInterpreter { tstate, done } => {
                // SAFETY: `tstate` is this thread's, in an interpreter whose
                // own thread waits, detached, for `done`.
                py.detach(|| unsafe {
                    ffi::PyEval_RestoreThread(tstate as *mut ffi::PyThreadState);
                    ffi::PyThreadState_Clear(tstate as *mut ffi::PyThreadState);
                    ffi::PyThreadState_DeleteCurrent();
                });
                let _ = done.send(());
            }
        }
    });
}

/// Raises `erlang.Interrupted` in the runner's thread if, with that
/// interpreter's GIL held, it is still running `job`. The runner clears any
/// undelivered interrupt when a job ends, also under the GIL, so an
/// interrupt can never hit a later job.
fn interrupt(py: Python<'_>, runner: &Runner, job: u64) {
    let mut sub = runner.interrupt.lock();
    match sub.as_mut() {
        None => {
            drop(sub);
            let Some(rt) = RUNTIME.get() else { return };
            if runner.interpreter.load(Ordering::Acquire) == 0 {
                raise_in(runner, job, rt.interrupted.as_ptr());
            }
        }
        Some(sub) => {
            // A sub-interpreter: attach to it with this thread's own thread
            // state there (made once), which waits for its GIL; raise;
            // detach. The lock keeps the slot from ending meanwhile.
            let interpreter = sub.interpreter;
            let class = sub.class.as_ptr() as usize;
            let tstate = &mut sub.tstate;
            py.detach(|| unsafe {
                if *tstate == 0 {
                    *tstate = ffi::PyThreadState_New(interpreter as *mut ffi::PyInterpreterState)
                        as usize;
                }
                ffi::PyEval_RestoreThread(*tstate as *mut ffi::PyThreadState);
                raise_in(runner, job, class as *mut ffi::PyObject);
                ffi::PyEval_SaveThread();
            });
        }
    }
}

/// Call with the runner's interpreter attached.
fn raise_in(runner: &Runner, job: u64, class: *mut ffi::PyObject) {
    if runner.current_job.load(Ordering::SeqCst) != job {
        return;
    }
    let ident = runner.thread_ident.load(Ordering::Acquire);
    // SAFETY: attached to the runner's interpreter; `class` lives there.
    unsafe {
        ffi::PyThreadState_SetAsyncExc(ident as _, class);
    }
}

unsafe fn initialize(exe: &CStr) -> Result<(), String> {
    if ffi::Py_IsInitialized() != 0 {
        return Err("Python is already initialised in this process".into());
    }
    let mut config = std::mem::MaybeUninit::<ffi::PyConfig>::zeroed();
    ffi::PyConfig_InitPythonConfig(config.as_mut_ptr());
    let config = config.assume_init_mut();
    config.install_signal_handlers = 0;
    config.parse_argv = 0;
    config.configure_c_stdio = 0;
    // The real interpreter path: prefix, venv (pyvenv.cfg) and
    // sys.executable (used by multiprocessing) are derived from it.
    let status = ffi::PyConfig_SetBytesString(config, &mut config.program_name, exe.as_ptr());
    if ffi::PyStatus_Exception(status) != 0 {
        ffi::PyConfig_Clear(config);
        return Err(status_message("setting program_name", &status));
    }
    let status = ffi::Py_InitializeFromConfig(config);
    ffi::PyConfig_Clear(config);
    if ffi::PyStatus_Exception(status) != 0 {
        return Err(status_message("Py_InitializeFromConfig", &status));
    }
    super::arena_cache::install();
    // Hand the GIL back; this thread re-attaches with its own thread state.
    ffi::PyEval_SaveThread();
    Ok(())
}

unsafe fn status_message(what: &str, status: &ffi::PyStatus) -> String {
    let msg = if status.err_msg.is_null() {
        "unknown error".to_string()
    } else {
        CStr::from_ptr(status.err_msg)
            .to_string_lossy()
            .into_owned()
    };
    format!("{what} failed: {msg}")
}

/// Re-opens the already loaded libpython with RTLD_GLOBAL, so C extension
/// modules (which do not link libpython) resolve its symbols. The BEAM loads
/// NIFs with RTLD_LOCAL.
fn promote_libpython() -> Result<String, String> {
    // SAFETY: dladdr/dlopen on a symbol of a library that is loaded.
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        let sym = ffi::Py_IsInitialized as *const libc::c_void;
        if libc::dladdr(sym, &mut info) == 0 || info.dli_fname.is_null() {
            return Err("cannot locate libpython (dladdr failed)".into());
        }
        let path = CStr::from_ptr(info.dli_fname);
        let handle = libc::dlopen(
            path.as_ptr(),
            libc::RTLD_NOW | libc::RTLD_GLOBAL | libc::RTLD_NOLOAD,
        );
        if handle.is_null() {
            return Err(format!(
                "cannot make {} globally visible",
                path.to_string_lossy()
            ));
        }
        Ok(path.to_string_lossy().into_owned())
    }
}

/// Creates the `erlang` module in the current interpreter and registers it
/// in `sys.modules`.
pub fn install_erlang_module(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    let module = PyModule::new(py, "erlang")?;
    let dict: Bound<'_, PyDict> = module.dict();
    dict.set_item("_write", io::write_function(py)?)?;
    crate::callback::install(py, &dict)?;
    crate::channel::install(py, &dict)?;
    crate::buffer::install(py, &dict)?;
    let code = CString::new(include_str!("../erlang/bootstrap.py"))
        .map_err(|_| pyo3::exceptions::PyValueError::new_err("bootstrap contains NUL"))?;
    py.run(&code, Some(&dict), None)?;
    crate::observe::install(py, &dict)?;
    crate::threads::install(py, &dict)?;
    super::idle_loop::install(py, &dict)?;
    py.import("sys")?
        .getattr("modules")?
        .set_item("erlang", &module)?;
    Ok(module)
}
