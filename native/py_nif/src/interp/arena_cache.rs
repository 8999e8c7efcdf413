//! A few freed obmalloc arenas kept mapped for the next allocation.
//!
//! CPython's small-object allocator takes memory from the OS in arenas
//! (1 MiB since 3.10, 256 KiB before) and returns an arena as soon as its
//! last object is freed, keeping only one empty arena. A call that makes
//! and drops many small objects (a list of 100,000 ints crossing in and
//! back: 3.2 MB of int objects) so maps fresh arenas on every call, and
//! the kernel zeroes and faults in each of their pages again: on this
//! project's test machine a fifth of such a call's time.
//!
//! The arena allocator hook (`PyObject_SetArenaAllocator`, public C API)
//! is wrapped: freed arenas, up to `CACHE_BYTES` in all, are kept and
//! handed back by the next allocation of the same size; the rest go to
//! CPython's own allocator, which also makes every arena. So any arena is
//! freed by the allocator that made it, whether it was made before the
//! hook was set or after. The cache is process-wide and locked: with
//! sub-interpreters of their own GIL, arenas are made and freed in several
//! threads at once. A free-threaded CPython does not use arenas (its
//! allocator is mimalloc), and the hook is then never called.
use parking_lot::Mutex;
use pyo3::ffi;
use std::os::raw::c_void;
use std::sync::OnceLock;

/// At most this many bytes of freed arenas stay mapped.
const CACHE_BYTES: usize = 8 << 20;
/// Slots for cached arenas: `CACHE_BYTES` of the smallest arenas (256 KiB).
const SLOTS: usize = 32;

struct Cache {
    arenas: [(usize, usize); SLOTS],
    len: usize,
    bytes: usize,
}

static CACHE: Mutex<Cache> = Mutex::new(Cache {
    arenas: [(0, 0); SLOTS],
    len: 0,
    bytes: 0,
});

/// CPython's own arena allocator, as found when the hook was set.
struct Previous(ffi::PyObjectArenaAllocator);

// SAFETY: the allocator's context pointer is CPython's, set once and only
// passed back to its own functions, which are thread-safe.
unsafe impl Send for Previous {}
unsafe impl Sync for Previous {}

static PREVIOUS: OnceLock<Previous> = OnceLock::new();

/// Sets the hook. Call once, with Python initialised, before other threads
/// use it.
pub fn install() {
    let mut previous = ffi::PyObjectArenaAllocator {
        ctx: std::ptr::null_mut(),
        alloc: None,
        free: None,
    };
    // SAFETY: fills the struct with the current allocator.
    unsafe { ffi::PyObject_GetArenaAllocator(&mut previous) };
    if previous.alloc.is_none() || previous.free.is_none() {
        return;
    }
    if PREVIOUS.set(Previous(previous)).is_err() {
        return;
    }
    let mut ours = ffi::PyObjectArenaAllocator {
        ctx: std::ptr::null_mut(),
        alloc: Some(alloc),
        free: Some(free),
    };
    // SAFETY: CPython copies the struct.
    unsafe { ffi::PyObject_SetArenaAllocator(&mut ours) };
}

extern "C" fn alloc(_ctx: *mut c_void, size: usize) -> *mut c_void {
    {
        let mut cache = CACHE.lock();
        let len = cache.len;
        if let Some(i) = cache.arenas[..len].iter().position(|a| a.1 == size) {
            let (ptr, _) = cache.arenas[i];
            cache.arenas[i] = cache.arenas[len - 1];
            cache.len -= 1;
            cache.bytes -= size;
            return ptr as *mut c_void;
        }
    }
    match PREVIOUS.get() {
        Some(Previous(p)) => match p.alloc {
            Some(f) => f(p.ctx, size),
            None => std::ptr::null_mut(),
        },
        None => std::ptr::null_mut(),
    }
}

extern "C" fn free(_ctx: *mut c_void, ptr: *mut c_void, size: usize) {
    if ptr.is_null() {
        return;
    }
    {
        let mut cache = CACHE.lock();
        if cache.len < SLOTS && cache.bytes + size <= CACHE_BYTES {
            let len = cache.len;
            cache.arenas[len] = (ptr as usize, size);
            cache.len += 1;
            cache.bytes += size;
            return;
        }
    }
    if let Some(Previous(p)) = PREVIOUS.get() {
        if let Some(f) = p.free {
            f(p.ctx, ptr, size);
        }
    }
}
