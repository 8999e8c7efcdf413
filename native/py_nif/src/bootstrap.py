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
