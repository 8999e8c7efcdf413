//! Interpreter threads: the runtime thread that starts CPython and raises
//! interrupts (`runtime`), runners (`worker`), the contexts on them and
//! their namespaces (`context`), the jobs they run (`job`), the parallel
//! pool's sub-interpreter slots (`slot`), and the
//! watch that cancels the jobs of callers that died (`watch`), and a
//! runner's event loop run between jobs (`idle_loop`), how long a
//! waiting runner polls (`spin`), internal calls run beside a busy
//! runner (`beside`), the envs jobs reuse (`env_pool`), and the changes
//! each runner applies before its next job (`changes`), the freed
//! CPython arenas kept for reuse (`arena_cache`), and the objects a job
//! frees after its reply (`leftovers`).
pub mod arena_cache;
pub mod beside;
pub mod changes;
pub mod context;
pub mod env_pool;
pub mod idle_loop;
pub mod job;
pub mod leftovers;
pub mod runtime;
#[cfg(all(feature = "parallel", Py_3_12))]
pub mod slot;
pub mod spin;
pub mod watch;
pub mod worker;
