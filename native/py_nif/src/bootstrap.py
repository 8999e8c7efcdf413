# The `erlang` module every interpreter gets at start-up. `_write` is
# injected by the NIF before this runs.
import io
import sys


class Pid:
    """An Elixir/Erlang process id. Made by py when a pid crosses into Python;
    hashable and comparable, and it converts back to the same pid."""

    __slots__ = ("_b", "_s")

    def __init__(self, b, s="<pid>"):
        if not isinstance(b, bytes):
            raise TypeError("erlang.Pid values are made by py from Elixir pids")
        self._b = b
        self._s = s

    def __eq__(self, other):
        return isinstance(other, Pid) and other._b == self._b

    def __hash__(self):
        return hash(self._b)

    def __repr__(self):
        return "erlang.Pid(" + self._s + ")"


class Interrupted(BaseException):
    """Raised inside Python code whose Elixir caller timed out or whose
    context is stopping. It derives from BaseException so that a bare
    `except Exception` does not swallow it."""


class _Stream(io.TextIOBase):
    """sys.stdout / sys.stderr: text written during a call goes to the
    calling Elixir process's group leader; other text goes to the process's
    real stream."""

    def __init__(self, fd, fallback):
        self._fd = fd
        self._fallback = fallback

    @property
    def encoding(self):
        return "utf-8"

    @property
    def errors(self):
        return "strict"

    def writable(self):
        return True

    def isatty(self):
        return False

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not " + type(s).__name__)
        if not _write(self._fd, s) and self._fallback is not None:
            self._fallback.write(s)
        return len(s)

    def flush(self):
        if self._fallback is not None:
            try:
                self._fallback.flush()
            except Exception:
                pass


sys.stdout = _Stream(1, sys.__stdout__)
sys.stderr = _Stream(2, sys.__stderr__)


class Error(Exception):
    """An Elixir callback raised, threw or exited; the message says what."""


class UnknownFunctionError(LookupError):
    """No Elixir function is registered under the name that was called."""


def call(name, *args):
    """Calls the Elixir function registered as `name` with `args`."""
    return _call(name, args)


def send(pid, message):
    """Sends `message` to the Elixir process `pid` (an erlang.Pid)."""
    _send(pid, message)


def self():
    """The pid of the Elixir process that made the current call."""
    return _self()


def __getattr__(name):
    # `erlang.name(...)` and `from erlang import name` for registered names.
    if name.startswith("__") or not _registered(name):
        raise AttributeError(
            "module 'erlang' has no attribute %r (no Elixir function is registered "
            "under that name; register it with Py.register_function/2)" % name
        )

    def function(*args):
        return _call(name, args)

    function.__name__ = name
    function.__qualname__ = name
    return function


# asyncio support: each runner thread has one event loop, made on first use.
_loops = None


def _loop():
    global _loops
    import asyncio
    import threading

    if _loops is None:
        _loops = threading.local()
    loop = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        # The thread's current loop, so asyncio.gather() and friends called
        # outside a coroutine attach their futures to it.
        asyncio.set_event_loop(loop)
        _loops.loop = loop
    return loop


def _install_loop_policy():
    # asyncio.get_event_loop() (used by asyncio.gather() and friends outside
    # a coroutine) finds this thread's loop, made on first use, on every
    # thread py runs Python on.
    import asyncio

    class _Policy(asyncio.DefaultEventLoopPolicy):
        def get_event_loop(self):
            return _loop()

    asyncio.set_event_loop_policy(_Policy())


_install_loop_policy()


def _await(awaitable):
    """Runs an awaitable to completion on this thread's event loop."""
    return _loop().run_until_complete(awaitable)


def _iterator(obj):
    """An iterator or async iterator over obj."""
    if hasattr(type(obj), "__anext__"):
        return obj
    if hasattr(type(obj), "__aiter__"):
        return obj.__aiter__()
    return iter(obj)


def _anext_chunk(iterator, count):
    """Up to count items from an async iterator: (items, done)."""

    async def take():
        items = []
        while len(items) < count:
            try:
                items.append(await iterator.__anext__())
            except StopAsyncIteration:
                return items, True
        return items, False

    return _await(take())


def _close(iterator):
    if hasattr(iterator, "aclose"):
        _await(iterator.aclose())
    elif hasattr(iterator, "close"):
        iterator.close()


# Virtual environments (see venv.rs): what _set_venv last did in this
# interpreter, to undo it: (added sys.path entries, saved prefix,
# exec_prefix, VIRTUAL_ENV).
_venv = None


def _set_venv(spec):
    """Makes this interpreter use the venv `spec`, (prefix, site_dirs), or
    none (None), undoing the previous activation first. The venv's
    site-packages (and what their .pth files add) go on sys.path before the
    site-packages that were there, as in the venv's own interpreter; modules
    already imported stay imported."""
    global _venv
    import importlib
    import os
    import site

    if _venv is not None:
        added, prefix, exec_prefix, env = _venv
        _venv = None
        sys.path[:] = [p for p in sys.path if p not in added]
        for p in added:
            sys.path_importer_cache.pop(p, None)
        sys.prefix, sys.exec_prefix = prefix, exec_prefix
        if env is None:
            os.environ.pop("VIRTUAL_ENV", None)
        elif os.environ.get("VIRTUAL_ENV") != env:
            os.environ["VIRTUAL_ENV"] = env
    if spec is not None:
        prefix, site_dirs = spec
        saved = (sys.prefix, sys.exec_prefix, os.environ.get("VIRTUAL_ENV"))
        before = set(sys.path)
        for d in site_dirs:
            site.addsitedir(d)
        added = [p for p in sys.path if p not in before]
        rest = [p for p in sys.path if p in before]
        at = next(
            (
                i
                for i, p in enumerate(rest)
                if os.path.basename(p.rstrip("/")) in ("site-packages", "dist-packages")
            ),
            len(rest),
        )
        sys.path[:] = rest[:at] + added + rest[at:]
        sys.prefix = sys.exec_prefix = prefix
        if os.environ.get("VIRTUAL_ENV") != prefix:
            os.environ["VIRTUAL_ENV"] = prefix
        _venv = (added,) + saved
    importlib.invalidate_caches()
