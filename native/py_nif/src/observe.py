# The observability half of the `erlang` module, run in its namespace in
# every interpreter right after bootstrap.py: the fork policy, logging to
# Elixir's Logger, trace spans, the shared state functions and the memory
# helpers behind Py.Memory. `_emit`, `_settings`, `_span_begin` and
# `_call_internal` are builtins injected by the NIF.
import contextvars as _contextvars
import logging as _logging
import time as _time

# ------------------------------------------------------------ fork policy


class ForkNotAllowedError(PermissionError):
    """Raised by os.fork, subprocess, os.system, os.exec*, os.spawn*,
    multiprocessing and the like inside py: Python runs inside the Erlang
    VM, and forking the VM's process (with its scheduler threads) corrupts
    it. Run programs from Elixir (System.cmd/3, a Port) instead, or allow
    it with `config :py, allow_fork: true`."""


def _forbidden(what):
    def blocked(*args, **kwargs):
        raise ForkNotAllowedError(
            what + " is not allowed in py: Python runs inside the Erlang VM, and "
            "forking the VM's process corrupts it. Run external programs from "
            "Elixir (System.cmd/3 or a Port), or, if this code only forks to exec "
            "another program at once, allow it with `config :py, allow_fork: true`."
        )

    blocked.__name__ = what.rsplit(".", 1)[-1].rstrip("()")
    blocked.__qualname__ = blocked.__name__
    return blocked


_OS_BLOCKED = (
    "fork", "forkpty", "system", "popen",
    "execv", "execve", "execl", "execle", "execlp", "execlpe", "execvp", "execvpe",
    "spawnv", "spawnve", "spawnvp", "spawnvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe",
    "posix_spawn", "posix_spawnp",
)


def _block_fork():
    import os
    import sys

    for module in (os, sys.modules.get("posix")):
        if module is None:
            continue
        for name in _OS_BLOCKED:
            if hasattr(module, name):
                setattr(module, name, _forbidden("os." + name + "()"))
    fork_exec = _forbidden("subprocess (_posixsubprocess.fork_exec)")
    try:
        import _posixsubprocess
    except ImportError:
        pass
    else:
        _posixsubprocess.fork_exec = fork_exec
    subprocess = sys.modules.get("subprocess")
    if subprocess is not None and hasattr(subprocess, "_fork_exec"):
        subprocess._fork_exec = fork_exec


if not _settings()[1]:
    _block_fork()

# ------------------------------------------------------------ logging

_LOG, _SPAN = 0, 1


class ErlangHandler(_logging.Handler):
    """A logging handler that sends records to Elixir's Logger: to the
    process that made the running call, or to py's event sink from threads
    outside any call. py installs one on the root logger; the level comes
    from `config :py, log_level:` or `Py.Logger.set_level/1`."""

    def emit(self, record):
        try:
            message = self.format(record)
            _emit(
                _LOG,
                (
                    record.levelno,
                    str(record.name),
                    message,
                    str(record.module),
                    record.lineno,
                    str(record.funcName),
                    str(record.pathname),
                    str(record.threadName),
                ),
            )
        except Exception:
            self.handleError(record)


_handler = None
# Runner threads of one interpreter apply a level change concurrently.
_handler_lock = __import__("threading").RLock()


def _apply_logging():
    """Applies the level py was configured with (a number; -1 is off)."""
    global _handler
    level = _settings()[0]
    root = _logging.getLogger()
    with _handler_lock:
        if level < 0:
            if _handler is not None:
                root.removeHandler(_handler)
                _handler = None
                root.setLevel(_logging.WARNING)
            return
        if _handler is None:
            _handler = ErlangHandler()
            root.addHandler(_handler)
        _handler.setLevel(level)
        root.setLevel(level)


def setup_logging(level=None, format=None):
    """Sends this interpreter's log records to Elixir (py does so at start
    unless it was configured off); `level` (a number) and `format` (a
    logging format string) adjust it here."""
    global _handler
    root = _logging.getLogger()
    with _handler_lock:
        if _handler is None:
            _handler = ErlangHandler()
            root.addHandler(_handler)
        if format is not None:
            _handler.setFormatter(_logging.Formatter(format))
        if level is not None:
            _handler.setLevel(level)
            root.setLevel(level)
        return _handler


_apply_logging()

# ------------------------------------------------------------ tracing

_current_span = _contextvars.ContextVar("erlang_current_span", default=None)


def _plain(value, depth=0):
    # Attributes cross as plain data; anything else as its repr.
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if depth < 8:
        if isinstance(value, (list, tuple)):
            return [_plain(v, depth + 1) for v in value]
        if isinstance(value, dict):
            return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    return repr(value)


class Span:
    """A traced operation: `with erlang.Span("name", key=value):`. When
    tracing is on (`Py.Trace.enable/0`), its end reaches Elixir's trace
    handlers with its name, duration, status, attributes and parent span.
    When it is off, a span costs one native call."""

    __slots__ = (
        "name", "attributes", "id", "parent_id", "trace_id",
        "_events", "_token", "_start", "_start_time",
    )

    def __init__(self, name, **attributes):
        self.name = str(name)
        self.attributes = attributes
        self.id = 0
        self.parent_id = None
        self.trace_id = None

    def _open(self, span_id):
        self.id = span_id
        parent = _current_span.get()
        if parent is not None:
            self.parent_id = parent.id
            self.trace_id = parent.trace_id
        else:
            self.trace_id = span_id
        self._events = []
        self._token = _current_span.set(self)
        self._start_time = _time.time_ns()
        self._start = _time.perf_counter_ns()

    def _close(self, exc_type, exc):
        duration = _time.perf_counter_ns() - self._start
        try:
            _current_span.reset(self._token)
        except ValueError:
            # Ended in another context than it began in (an async task).
            pass
        if exc_type is None:
            status, error = "ok", None
        else:
            status, error = "error", (exc_type.__qualname__, str(exc))
        try:
            _emit(
                _SPAN,
                (
                    self.name, self.id, self.parent_id, self.trace_id,
                    self._start_time // 1000, duration // 1000, status, error,
                    _plain(self.attributes), self._events,
                ),
            )
        except Exception as e:
            import sys

            sys.stderr.write("py: a span could not be sent to Elixir: %r\n" % (e,))

    def __enter__(self):
        span_id = _span_begin()
        if span_id:
            self._open(span_id)
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.id:
            self._close(exc_type, exc)
        return False

    def set_attribute(self, key, value):
        self.attributes[str(key)] = value

    def event(self, name, **attributes):
        """Records a point in time inside the span."""
        if self.id:
            self._events.append((str(name), _time.time_ns() // 1000, _plain(attributes)))


def current_span():
    """The innermost open span in this context, or None."""
    return _current_span.get()


def trace(name=None, **attributes):
    """A decorator that runs each call of the function in a span named
    `name` (default: the function's qualified name). Works on plain and
    async functions; `@erlang.trace` without arguments works too."""
    if callable(name) and not attributes:
        return trace()(name)

    def decorate(fn):
        import functools
        import inspect

        span_name = name or fn.__qualname__
        if inspect.iscoroutinefunction(fn):

            async def traced(*args, **kwargs):
                span_id = _span_begin()
                if not span_id:
                    return await fn(*args, **kwargs)
                span = Span(span_name, **attributes)
                span._open(span_id)
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as e:
                    span._close(type(e), e)
                    raise
                span._close(None, None)
                return result

        else:

            def traced(*args, **kwargs):
                span_id = _span_begin()
                if not span_id:
                    return fn(*args, **kwargs)
                span = Span(span_name, **attributes)
                span._open(span_id)
                try:
                    result = fn(*args, **kwargs)
                except BaseException as e:
                    span._close(type(e), e)
                    raise
                span._close(None, None)
                return result

        return functools.wraps(fn)(traced)

    return decorate


# ------------------------------------------------------------ shared state
# ETS-backed (Py.State), shared by every context and interpreter. In a call,
# the calling process serves them; in other threads, py's event sink does.


def state_get(key, default=None):
    """The value stored under `key`, or `default`."""
    return _call_internal("state_get", (key, default))


def state_set(key, value):
    """Stores `value` under `key`."""
    _call_internal("state_set", (key, value))


def state_delete(key):
    """Removes `key` (no error when it is absent)."""
    _call_internal("state_delete", (key,))


def state_keys():
    """All keys, as a list."""
    return _call_internal("state_keys", ())


def state_incr(key, amount=1):
    """Adds `amount` to the integer counter `key` (0 when absent),
    atomically; returns the new value."""
    return _call_internal("state_incr", (key, amount))


def state_decr(key, amount=1):
    """Subtracts `amount` from the counter `key`, atomically; returns the
    new value."""
    return _call_internal("state_incr", (key, -amount))


def state_clear():
    """Removes every key."""
    _call_internal("state_clear", ())


# ------------------------------------------------------------ memory (Py.Memory)


def _memory_stats():
    import gc
    import sys

    try:
        import tracemalloc
    except ImportError:
        # Not in sub-interpreters (the parallel pool's slots).
        tracemalloc = None

    rss = None
    try:
        import os

        with open("/proc/self/statm") as f:
            rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except Exception:
        pass
    peak = None
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if sys.platform != "darwin":
            peak *= 1024
    except Exception:
        pass
    if tracemalloc is None:
        traced = None
    else:
        tracing = tracemalloc.is_tracing()
        current, peak_traced = tracemalloc.get_traced_memory() if tracing else (0, 0)
        traced = (tracing, current, peak_traced)
    generations = [
        (s.get("collections", 0), s.get("collected", 0), s.get("uncollectable", 0))
        for s in gc.get_stats()
    ]
    return (
        gc.isenabled(), list(gc.get_count()), list(gc.get_threshold()), generations,
        len(gc.garbage), sys.getallocatedblocks(), rss, peak, traced,
    )


def _tracemalloc_start(frames):
    import tracemalloc

    tracemalloc.start(frames)


def _tracemalloc_stop():
    import tracemalloc

    tracemalloc.stop()


def _tracemalloc_top(limit, key_type):
    import tracemalloc

    if not tracemalloc.is_tracing():
        raise RuntimeError(
            "tracemalloc is not tracing; start it with Py.Memory.tracemalloc_start/1"
        )
    snapshot = tracemalloc.take_snapshot().filter_traces(
        (tracemalloc.Filter(False, tracemalloc.__file__),)
    )
    stats = snapshot.statistics(key_type)
    total = sum(s.size for s in stats)
    top = [
        (s.traceback[0].filename, s.traceback[0].lineno, s.size, s.count)
        for s in stats[:limit]
    ]
    return (total, top)


# ------------------------------------------------------------ slot teardown


def _forget_thread():
    # threading keeps a _DummyThread for a runner thread once code asks for
    # threading.current_thread() (logging does, for every record). Drop it
    # while the interpreter still works: its cleanup fails noisily once the
    # interpreter is being torn down.
    import sys

    threading = sys.modules.get("threading")
    info = getattr(threading, "_thread_local_info", None)
    if info is not None and getattr(info, "_track_dummy_thread_ref", None) is not None:
        del info._track_dummy_thread_ref
