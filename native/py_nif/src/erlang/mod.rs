//! The `erlang` module Python code sees: its Python part (`bootstrap.py`,
//! `observe.py`), its native builtins (`builtins`), callbacks and sends to
//! Elixir (`callback`, and `callback_route`: straight to a call's callback
//! process), output to the caller's group leader (`io`),
//! channels and buffers and their GIL-free waits (`channel`, `buffer`,
//! `blocking`), and logging, tracing and the fork and process guards
//! (`observe`), and Python threads that run no job: the call they were
//! started in, services' stop tokens (`threads`, `threads.py`), the process
//! that serves their calls to Elixir (`thread_route`).
pub mod blocking;
pub mod buffer;
pub mod builtins;
pub mod callback;
pub mod callback_route;
pub mod channel;
pub mod io;
pub mod observe;
pub mod thread_route;
pub mod threads;
