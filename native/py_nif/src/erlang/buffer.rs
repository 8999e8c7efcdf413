//! Buffers: Elixir writes binaries, Python reads them like a file.
//!
//! `Py.Buffer.write/2` copies the binary *term* into an `OwnedEnv`; for a
//! binary over 64 bytes that is a reference count, not a copy of the
//! bytes, and the bytes never move while the env lives. Each written
//! binary is a `Chunk` (the env and a pointer to its bytes) in a queue.
//! Python reads through `erlang.Buffer` (bootstrap.py) and these builtins:
//!
//! - `_buf_read(c, n)`: `n` bytes (fewer only at the end); `n < 0`: all
//!   until closed. `_buf_read1(c, n)`: what is there, at least one byte.
//! - `_buf_readline(c, limit)`, `_buf_readinto(c, writable)`: one copy.
//! - `_buf_view(c, n)`: a read-only memoryview over (part of) the
//!   next chunk's bytes, with no copy. The memoryview's exporter is an
//!   `erlang._ChunkPin`, a type made with `PyType_FromSpec` in each
//!   interpreter, that holds an `Arc` of the chunk: the bytes stay alive as
//!   long as any view of them.
//! - `_buf_close(c)`, `_buf_info(c)`.
//!
//! Reads block with the GIL released until enough data arrived or the
//! buffer was closed (then they return what is left, then `b""`).
use crate::blocking::{self, OnWake, Shared, Stop};
use crate::builtins::{self, builtin, MethodDef};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};
use rustler::{Binary, LocalPid, OwnedEnv, Resource, Term};
use std::collections::VecDeque;
use std::ffi::CStr;
use std::os::raw::{c_int, c_void};
use std::sync::Arc;

pub const CAPSULE: &CStr = c"py.buffer";

/// One written binary, kept alive (and unmoved) by its env.
struct Chunk {
    _env: OwnedEnv,
    ptr: *const u8,
    len: usize,
}

// SAFETY: the bytes are immutable and owned by `_env`, which is only
// dropped with the chunk; nothing else is shared.
unsafe impl Send for Chunk {}
unsafe impl Sync for Chunk {}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+len` are the binary's bytes, alive with `_env`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// A part of a chunk: what is left of it in the queue, or what a read took.
struct Piece {
    chunk: Arc<Chunk>,
    start: usize,
    end: usize,
}

impl Piece {
    fn bytes(&self) -> &[u8] {
        &self.chunk.bytes()[self.start..self.end]
    }
}

pub struct BufferState {
    /// The unread bytes, in order.
    chunks: VecDeque<Piece>,
    /// Bytes written and not yet read.
    buffered: usize,
    /// That many bytes from the read position hold no newline (so a
    /// waiting `readline` never rescans them under the lock).
    scanned: usize,
    /// The writer closed it: reads return what is left, then end.
    eof: bool,
    /// The reader closed it: reads fail, writes are refused.
    reader_closed: bool,
    /// `write` is refused while `buffered >= max_size` (0: no limit).
    max_size: usize,
}

pub type Buffer = Shared<BufferState>;

impl OnWake for BufferState {}

pub enum WriteError {
    Full,
    Closed,
    NotBinary,
}

pub fn new(max_size: usize) -> Arc<Buffer> {
    Arc::new(Shared::new(BufferState {
        chunks: VecDeque::new(),
        buffered: 0,
        scanned: 0,
        eof: false,
        reader_closed: false,
        max_size,
    }))
}

/// Queues the binary `data` (its bytes are shared, not copied).
pub fn write(buffer: &Buffer, data: Term) -> Result<(), WriteError> {
    if Binary::from_term(data).is_err() {
        return Err(WriteError::NotBinary);
    }
    {
        let state = buffer.state.lock();
        if state.eof || state.reader_closed {
            return Err(WriteError::Closed);
        }
        if state.max_size > 0 && state.buffered >= state.max_size {
            return Err(WriteError::Full);
        }
    }
    let env = OwnedEnv::new();
    let saved = env.save(data);
    let bytes = env.run(|env| {
        Binary::from_term(saved.load(env))
            .ok()
            .map(|b| (b.as_slice().as_ptr(), b.len()))
    });
    let Some((ptr, len)) = bytes else {
        return Err(WriteError::NotBinary);
    };
    if len == 0 {
        return Ok(());
    }
    let mut state = buffer.state.lock();
    if state.eof || state.reader_closed {
        return Err(WriteError::Closed);
    }
    state.chunks.push_back(Piece {
        chunk: Arc::new(Chunk {
            _env: env,
            ptr,
            len,
        }),
        start: 0,
        end: len,
    });
    state.buffered += len;
    drop(state);
    buffer.notify();
    Ok(())
}

/// End of data: readers get what is left, then the end.
pub fn close(buffer: &Buffer) {
    buffer.state.lock().eof = true;
    buffer.notify();
}

/// The reader is done: drops what is buffered, refuses further writes.
fn close_reader(buffer: &Buffer) {
    let mut state = buffer.state.lock();
    state.reader_closed = true;
    state.chunks.clear();
    state.buffered = 0;
    state.scanned = 0;
    drop(state);
    buffer.notify();
}

/// Takes up to `n` bytes from the front.
fn take(state: &mut BufferState, mut n: usize) -> Vec<Piece> {
    state.scanned = state.scanned.saturating_sub(n);
    let mut pieces = Vec::new();
    while n > 0 {
        let Some(front) = state.chunks.front_mut() else {
            break;
        };
        let piece = if front.end - front.start > n {
            // Part of the front piece; the rest stays queued.
            let piece = Piece {
                chunk: front.chunk.clone(),
                start: front.start,
                end: front.start + n,
            };
            front.start += n;
            piece
        } else {
            let Some(piece) = state.chunks.pop_front() else {
                break;
            };
            piece
        };
        n -= piece.end - piece.start;
        state.buffered -= piece.end - piece.start;
        pieces.push(piece);
    }
    pieces
}

/// Returns the `pieces` a read took to the front, in order.
fn put_back(state: &mut BufferState, pieces: Vec<Piece>) {
    for piece in pieces.into_iter().rev() {
        state.buffered += piece.end - piece.start;
        state.chunks.push_front(piece);
    }
    state.scanned = 0;
}

/// How much a read takes once it may proceed.
enum Want {
    /// `n` bytes, or what is left at the end.
    Exactly(usize),
    /// Everything until the end.
    All,
    /// At least one byte, at most `n` (or the end).
    Some(usize),
    /// Up to and including the next newline, at most `limit` bytes.
    Line(usize),
    /// Like `Some`, but within the front chunk (for a contiguous view).
    Chunk(usize),
}

/// The number of bytes to take now, or None to wait.
fn ready(state: &mut BufferState, want: &Want) -> Option<usize> {
    let have = state.buffered;
    match *want {
        Want::Exactly(n) if have >= n || state.eof => Some(n.min(have)),
        Want::All if state.eof => Some(have),
        Want::Some(n) if have > 0 || state.eof => Some(n.min(have)),
        Want::Chunk(n) if have > 0 || state.eof => Some(n.min(front_remaining(state))),
        Want::Line(limit) => match line_length(state, limit) {
            Some(len) => Some(len),
            None if have >= limit || state.eof => Some(limit.min(have)),
            None => None,
        },
        _ => None,
    }
}

/// Length up to and including the first newline within `limit` bytes.
/// Scans only what `scanned` does not already cover, and extends it.
fn line_length(state: &mut BufferState, limit: usize) -> Option<usize> {
    let start = state.scanned;
    let mut chunk_start = 0;
    for piece in &state.chunks {
        if chunk_start >= limit {
            break;
        }
        let bytes = piece.bytes();
        let chunk_end = chunk_start + bytes.len();
        if chunk_end > start {
            let from = start.saturating_sub(chunk_start);
            let to = bytes.len().min(limit - chunk_start);
            if from < to {
                if let Some(at) = bytes[from..to].iter().position(|&b| b == b'\n') {
                    return Some(chunk_start + from + at + 1);
                }
            }
        }
        chunk_start = chunk_end;
    }
    state.scanned = start.max(chunk_start.min(limit));
    None
}

enum Taken {
    Pieces(Vec<Piece>),
    ReaderClosed,
}

impl Want {
    /// What is still wanted after `n` bytes were taken.
    fn after(&self, n: usize) -> Want {
        match *self {
            Want::Exactly(m) => Want::Exactly(m.saturating_sub(n)),
            Want::Line(limit) => Want::Line(limit.saturating_sub(n)),
            Want::All => Want::All,
            Want::Some(m) => Want::Some(m),
            Want::Chunk(m) => Want::Chunk(m),
        }
    }
}

/// Waits until `want` can be met, then takes it.
///
/// A read larger than `max_size` could wait forever: the writer is refused
/// once `max_size` bytes wait. So a read that must wait while the buffer is
/// full takes what is there (freeing the space) and waits for the rest. If
/// the call is cancelled meanwhile, those bytes go back to the front.
fn read_pieces(py: Python<'_>, buffer: &Arc<Buffer>, mut want: Want) -> PyResult<Vec<Piece>> {
    let mut held = Vec::new();
    let taken = blocking::wait(buffer, None, |state| {
        if state.reader_closed {
            return Some(Taken::ReaderClosed);
        }
        if let Some(n) = ready(state, &want) {
            return Some(Taken::Pieces(take(state, n)));
        }
        if state.max_size > 0 && state.buffered >= state.max_size {
            // Not ready, so `want` is more than what is buffered.
            let n = state.buffered;
            held.extend(take(state, n));
            want = want.after(n);
        }
        None
    });
    match taken {
        Ok(Taken::Pieces(pieces)) => {
            held.extend(pieces);
            Ok(held)
        }
        Ok(Taken::ReaderClosed) => Err(closed_reader_error()),
        Err(Stop::Interrupted) | Err(Stop::TimedOut) => {
            if !held.is_empty() {
                let mut state = buffer.state.lock();
                if !state.reader_closed {
                    put_back(&mut state, held);
                }
                drop(state);
                buffer.notify();
            }
            Err(builtins::erlang_error(
                py,
                "Interrupted",
                "the call was cancelled while it waited on a buffer".into(),
            ))
        }
    }
}

fn closed_reader_error() -> PyErr {
    PyValueError::new_err("I/O operation on a closed erlang.Buffer")
}

fn to_bytes(py: Python<'_>, pieces: &[Piece]) -> PyResult<Py<PyAny>> {
    let len = pieces.iter().map(|p| p.end - p.start).sum();
    let bytes = PyBytes::new_with(py, len, |out| {
        let mut at = 0;
        for piece in pieces {
            let bytes = piece.bytes();
            out[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        }
        Ok(())
    })?;
    Ok(bytes.into_any().unbind())
}

/// The size argument of read/readline: negative or None means no limit.
fn size_arg(arg: &Bound<'_, PyAny>) -> PyResult<Option<usize>> {
    if arg.is_none() {
        return Ok(None);
    }
    let n: i64 = arg
        .extract()
        .map_err(|_| PyTypeError::new_err("the size must be an integer or None"))?;
    Ok(usize::try_from(n).ok())
}

/// The buffer as Elixir holds it (`%Py.Buffer{ref: ...}`).
pub struct BufferRes(pub Arc<Buffer>);

#[rustler::resource_impl]
impl Resource for BufferRes {
    fn down<'a>(&'a self, _env: rustler::Env<'a>, _pid: LocalPid, _mon: rustler::Monitor) {
        close(&self.0);
    }
}

impl Drop for BufferRes {
    fn drop(&mut self) {
        // Nobody in Elixir can write any more.
        close(&self.0);
    }
}

/// `erlang.Buffer(capsule)` for a buffer crossing into Python.
pub fn to_python_object<'py>(py: Python<'py>, buffer: &Arc<Buffer>) -> PyResult<Bound<'py, PyAny>> {
    let capsule = builtins::capsule(py, buffer, CAPSULE)?;
    builtins::erlang_object(py, "Buffer", capsule)
}

// ------------------------------------------------------------ zero-copy views

/// An `erlang._ChunkPin`: exports one piece of a chunk through the buffer
/// protocol and keeps the chunk alive.
#[repr(C)]
struct Pin {
    ob_base: ffi::PyObject,
    piece: *mut Piece,
}

unsafe extern "C" fn pin_getbuffer(
    exporter: *mut ffi::PyObject,
    view: *mut ffi::Py_buffer,
    flags: c_int,
) -> c_int {
    let piece = (*(exporter as *mut Pin)).piece;
    if piece.is_null() {
        ffi::PyErr_SetString(
            ffi::PyExc_BufferError,
            c"this erlang._ChunkPin holds no data".as_ptr(),
        );
        return -1;
    }
    let bytes = (*piece).bytes();
    // Read-only: a request for a writable buffer fails with BufferError.
    ffi::PyBuffer_FillInfo(
        view,
        exporter,
        bytes.as_ptr() as *mut c_void,
        bytes.len() as ffi::Py_ssize_t,
        1,
        flags,
    )
}

unsafe extern "C" fn pin_dealloc(obj: *mut ffi::PyObject) {
    let pin = obj as *mut Pin;
    if !(*pin).piece.is_null() {
        drop(Box::from_raw((*pin).piece));
        (*pin).piece = std::ptr::null_mut();
    }
    let ty = ffi::Py_TYPE(obj);
    match (*ty).tp_free {
        Some(free) => free(obj as *mut c_void),
        None => ffi::PyObject_Free(obj as *mut c_void),
    }
    // Instances of heap types hold a reference to their type.
    ffi::Py_DECREF(ty as *mut ffi::PyObject);
}

/// Makes the `_ChunkPin` type in the calling interpreter.
fn pin_type(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let mut slots = [
        ffi::PyType_Slot {
            slot: ffi::Py_bf_getbuffer,
            pfunc: pin_getbuffer as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_dealloc,
            pfunc: pin_dealloc as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_doc,
            pfunc: c"Keeps bytes written by Elixir alive for the memoryviews over them.".as_ptr()
                as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: 0,
            pfunc: std::ptr::null_mut(),
        },
    ];
    let mut spec = ffi::PyType_Spec {
        name: c"erlang._ChunkPin".as_ptr(),
        basicsize: std::mem::size_of::<Pin>() as c_int,
        itemsize: 0,
        flags: (ffi::Py_TPFLAGS_DEFAULT | ffi::Py_TPFLAGS_DISALLOW_INSTANTIATION) as _,
        slots: slots.as_mut_ptr(),
    };
    // SAFETY: attached; the spec and slots are valid for the call and the
    // name is 'static.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyType_FromSpec(&mut spec)) }
}

/// A read-only memoryview over `piece`, pinned by a `_ChunkPin`.
///
/// # Safety
/// `pin_type` must be a type made by `pin_type` (the `_buf_view` builtin is
/// bound to it at install, so Python code cannot pass another).
unsafe fn view(py: Python<'_>, pin_type: *mut ffi::PyObject, piece: Piece) -> PyResult<Py<PyAny>> {
    // SAFETY: attached; instances of the type have `Pin`'s layout.
    unsafe {
        let ty = pin_type as *mut ffi::PyTypeObject;
        let pin = Bound::from_owned_ptr_or_err(py, ffi::PyType_GenericAlloc(ty, 0))?;
        (*(pin.as_ptr() as *mut Pin)).piece = Box::into_raw(Box::new(piece));
        Ok(Bound::from_owned_ptr_or_err(py, ffi::PyMemoryView_FromObject(pin.as_ptr()))?.unbind())
    }
}

// ------------------------------------------------------------ builtins

fn buffer_arg(args: &Bound<'_, PyTuple>) -> PyResult<Arc<Buffer>> {
    builtins::from_capsule(&args.get_item(0)?, CAPSULE)
}

builtin!(
    READ_DEF,
    c"_buf_read",
    c"_buf_read(c, n): internal",
    |py, args| {
        let buffer = buffer_arg(args)?;
        let want = match size_arg(&args.get_item(1)?)? {
            Some(n) => Want::Exactly(n),
            None => Want::All,
        };
        to_bytes(py, &read_pieces(py, &buffer, want)?)
    }
);

builtin!(
    READ1_DEF,
    c"_buf_read1",
    c"_buf_read1(c, n): internal",
    |py, args| {
        let buffer = buffer_arg(args)?;
        let n = size_arg(&args.get_item(1)?)?.unwrap_or(usize::MAX);
        to_bytes(py, &read_pieces(py, &buffer, Want::Some(n))?)
    }
);

builtin!(
    READLINE_DEF,
    c"_buf_readline",
    c"_buf_readline(c, limit): internal",
    |py, args| {
        let buffer = buffer_arg(args)?;
        let limit = size_arg(&args.get_item(1)?)?.unwrap_or(usize::MAX);
        to_bytes(py, &read_pieces(py, &buffer, Want::Line(limit))?)
    }
);

/// A writable buffer export, released on drop.
struct Export(ffi::Py_buffer);

impl Drop for Export {
    fn drop(&mut self) {
        // SAFETY: obtained by PyObject_GetBuffer; dropped while attached
        // (the builtin holds the GIL when it returns).
        unsafe { ffi::PyBuffer_Release(&mut self.0) }
    }
}

builtin!(
    READINTO_DEF,
    c"_buf_readinto",
    c"_buf_readinto(c, b): internal",
    |py, args| {
        let buffer = buffer_arg(args)?;
        let target = args.get_item(1)?;
        let mut export = Export(ffi::Py_buffer::new());
        // SAFETY: attached; a simple writable request gives contiguous bytes.
        if unsafe { ffi::PyObject_GetBuffer(target.as_ptr(), &mut export.0, ffi::PyBUF_WRITABLE) }
            != 0
        {
            return Err(PyErr::fetch(py));
        }
        let len = export.0.len.max(0) as usize;
        let pieces = read_pieces(py, &buffer, Want::Exactly(len))?;
        let mut at = 0;
        for piece in &pieces {
            let bytes = piece.bytes();
            // SAFETY: `at + bytes.len() <= len`, the export's writable size.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    bytes.as_ptr(),
                    (export.0.buf as *mut u8).add(at),
                    bytes.len(),
                );
            }
            at += bytes.len();
        }
        drop(export);
        Ok(at.into_pyobject(py)?.into_any().unbind())
    }
);

/// Bound to the interpreter's `_ChunkPin` type (its `self`).
unsafe extern "C" fn view_impl(
    pin_type: *mut ffi::PyObject,
    a: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    builtins::wrap(a, |py, args| {
        let buffer = buffer_arg(args)?;
        let n = size_arg(&args.get_item(1)?)?.unwrap_or(usize::MAX);
        // At most the rest of the front chunk: a view is contiguous.
        let pieces = read_pieces(py, &buffer, Want::Chunk(n))?;
        match pieces.into_iter().next() {
            Some(piece) => view(py, pin_type, piece),
            // The end: an empty view.
            None => Ok(unsafe {
                Bound::from_owned_ptr_or_err(
                    py,
                    ffi::PyMemoryView_FromObject(PyBytes::new(py, b"").as_ptr()),
                )?
                .unbind()
            }),
        }
    })
}

/// Bytes left in the front chunk (0 when there is none).
fn front_remaining(state: &BufferState) -> usize {
    state
        .chunks
        .front()
        .map_or(0, |front| front.end - front.start)
}

builtin!(
    CLOSE_DEF,
    c"_buf_close",
    c"_buf_close(c): internal",
    |py, args| {
        let buffer = buffer_arg(args)?;
        close_reader(&buffer);
        Ok(py.None())
    }
);

builtin!(
    INFO_DEF,
    c"_buf_info",
    c"_buf_info(c): internal",
    |py, args| {
        let buffer = buffer_arg(args)?;
        let info = {
            let state = buffer.state.lock();
            (state.buffered, state.eof, state.reader_closed)
        };
        Ok(info.into_pyobject(py)?.into_any().unbind())
    }
);

static VIEW_DEF: MethodDef = MethodDef::new(c"_buf_view", view_impl, c"_buf_view(c, n): internal");

/// Adds the buffer builtins and the `_ChunkPin` type to the `erlang`
/// module's dict.
pub fn install(py: Python<'_>, dict: &Bound<'_, PyDict>) -> PyResult<()> {
    let pin = pin_type(py)?;
    // `_buf_view` gets the type as its `self`.
    // SAFETY: VIEW_DEF is 'static; the function keeps a reference to `pin`.
    let view = unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyCFunction_NewEx(
                &VIEW_DEF.0 as *const ffi::PyMethodDef as *mut ffi::PyMethodDef,
                pin.as_ptr(),
                std::ptr::null_mut(),
            ),
        )?
    };
    dict.set_item("_buf_view", view)?;
    dict.set_item("_ChunkPin", pin)?;
    builtins::install(
        py,
        dict,
        &[
            ("_buf_read", &READ_DEF),
            ("_buf_read1", &READ1_DEF),
            ("_buf_readline", &READLINE_DEF),
            ("_buf_readinto", &READINTO_DEF),
            ("_buf_close", &CLOSE_DEF),
            ("_buf_info", &INFO_DEF),
        ],
    )
}
