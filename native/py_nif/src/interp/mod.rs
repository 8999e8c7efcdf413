//! Interpreter threads: the runtime thread that starts CPython and raises
//! interrupts (`runtime`), runners and the contexts and jobs on them
//! (`worker`), and the parallel pool's sub-interpreter slots (`slot`).
pub mod runtime;
#[cfg(all(feature = "parallel", Py_3_12))]
pub mod slot;
pub mod worker;
