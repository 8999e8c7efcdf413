# The observability half of the `erlang` module, run in its namespace in
# every interpreter right after bootstrap.py: the fork policy, the process
# guard, logging to Elixir's Logger, trace spans, the shared state functions
# and the memory helpers behind Py.Memory. `_emit`, `_settings`, `_span_begin` and
# `_call_internal` are builtins injected by the NIF.
import contextvars as _contextvars
import logging as _logging
import operator as _operator
import time as _time

# ------------------------------------------------------------ fork policy
# Starting a program is allowed: subprocess (CPython's fork_exec, vfork and
# exec on Linux), os.posix_spawn, os.system, os.spawn* and os.popen never
# run Python in a copy of the VM. What would (os.fork, os.forkpty, pty.fork,
# multiprocessing's fork start method, subprocess's preexec_fn) and os.exec*
# (which replaces the VM's process) raise ForkNotAllowedError unless
# `config :py, allow_fork: true`. Children start clean either way: every
# signal at its default (the NIF puts the SIGCHLD and SIGFPE the BEAM
# ignores back to SIG_DFL, so waitpid sees exit statuses; posix_spawn resets
# the rest, subprocess's restore_signals SIGPIPE), an empty signal mask, and
# descriptors 0, 1 and 2 plus what the call names (pass_fds, file actions):
# the BEAM's own descriptors are not close-on-exec.


class ForkNotAllowedError(PermissionError):
    """Raised inside py by os.fork, os.forkpty, pty.fork, multiprocessing's
    fork start method, subprocess's preexec_fn and os.exec*: Python runs
    inside the Erlang VM, and forking the VM's process (with its scheduler
    threads) to run Python in the copy corrupts it. Starting programs
    (subprocess, os.posix_spawn, os.system, os.spawn*, os.popen) is allowed:
    those exec at once. Allow the rest with `config :py, allow_fork: true`."""


_FORK_HINT = (
    "forking the VM's process corrupts it: the copy holds the whole VM with "
    "one thread, and Python run there can deadlock or damage the VM's "
    "descriptors. Start programs with subprocess, os.posix_spawn or os.system "
    "(they exec at once, and are allowed), use multiprocessing's spawn or "
    "forkserver start method, or run programs from Elixir (System.cmd/3, a "
    "Port). If this code must fork anyway, allow it with "
    "`config :py, allow_fork: true`."
)
_EXEC_HINT = (
    "it would replace the VM's process with another program, ending the VM. "
    "Start the program as a child instead (subprocess, os.posix_spawn), or "
    "allow it with `config :py, allow_fork: true`."
)


def _forbidden(what, hint=_FORK_HINT):
    def blocked(*args, **kwargs):
        raise ForkNotAllowedError(what + " is not allowed in py: " + hint)

    blocked.__name__ = what.rsplit(".", 1)[-1].rstrip("()")
    blocked.__qualname__ = blocked.__name__
    return blocked


_OS_FORKS = ("fork", "forkpty")
_OS_EXECS = ("execv", "execve", "execl", "execle", "execlp", "execlpe", "execvp", "execvpe")


def _fork_policy(allow_fork):
    import os
    import signal
    import sys

    posix = [m for m in (os, sys.modules.get("posix")) if m is not None]
    if not allow_fork:
        for module in posix:
            for name in _OS_FORKS:
                if hasattr(module, name):
                    setattr(module, name, _forbidden("os." + name + "()"))
            for name in _OS_EXECS:
                if hasattr(module, name):
                    setattr(module, name, _forbidden("os." + name + "()", _EXEC_HINT))

    all_default = frozenset(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}
    unreaped = []

    def open_fds():
        for where in ("/proc/self/fd", "/dev/fd"):
            try:
                names = os.listdir(where)
            except OSError:
                continue
            fds = []
            for name in names:
                try:
                    fd = int(name)
                    if fd > 2 and os.get_inheritable(fd):
                        fds.append(fd)
                except (ValueError, OSError):
                    pass  # the listing's own descriptor, or one closed since
            return sorted(fds)
        return []

    def closing(actions):
        # Close, after the caller's actions, every inheritable descriptor
        # above 2 that they do not open or dup2 to.
        keep = set()
        for action in actions:
            if action and action[0] == os.POSIX_SPAWN_OPEN:
                keep.add(action[1])
            elif action and action[0] == os.POSIX_SPAWN_DUP2:
                keep.add(action[2])
        top = max([fd for fd in keep if fd > 2], default=2)
        closefrom = getattr(os, "POSIX_SPAWN_CLOSEFROM", None)
        more = [
            (os.POSIX_SPAWN_CLOSE, fd)
            for fd in open_fds()
            if fd not in keep and (closefrom is None or fd < top)
        ]
        if closefrom is not None:
            more.append((closefrom, top + 1))
        return more

    def reap_leftovers():
        for pid in list(unreaped):
            try:
                done = os.waitpid(pid, os.WNOHANG)[0]
            except ChildProcessError:
                done = pid
            if done:
                unreaped.remove(pid)

    def clean_spawn(original):
        def posix_spawn(path, argv, env, *, file_actions=(), setsigmask=None, setsigdef=None, **kwargs):
            reap_leftovers()
            actions = list(file_actions or ())
            actions += closing(actions)
            return original(
                path, argv, env, file_actions=actions,
                setsigmask=() if setsigmask is None else setsigmask,
                setsigdef=all_default if setsigdef is None else setsigdef,
                **kwargs,
            )

        posix_spawn.__name__ = original.__name__
        posix_spawn.__qualname__ = original.__name__
        posix_spawn.__doc__ = (
            "py: unless given, setsigmask is empty and setsigdef every signal; "
            "descriptors above 2 that file_actions do not name are closed.\n\n"
            + (original.__doc__ or "")
        )
        return posix_spawn

    spawn = getattr(os, "posix_spawn", None)
    spawnp = getattr(os, "posix_spawnp", None)
    if spawn is not None and spawnp is not None:
        spawn, spawnp = clean_spawn(spawn), clean_spawn(spawnp)

        def wait(pid):
            try:
                return os.waitpid(pid, 0)[1]
            except ChildProcessError:
                raise
            except BaseException:
                unreaped.append(pid)  # interrupted: reaped by a later spawn
                raise

        def system(command):
            """Run command in /bin/sh -c, as os.system does (same wait
            status), started with posix_spawn: py's child hygiene applies."""
            return wait(spawn("/bin/sh", ["sh", "-c", command], os.environ))

        def spawner(name, search, with_env):
            def spawnv(mode, file, args, *env):
                if len(env) != int(with_env):
                    raise TypeError(name + "() takes %d arguments" % (3 + with_env))
                if not isinstance(args, (tuple, list)):
                    raise TypeError("argv must be a tuple or a list")
                if not args or not args[0]:
                    raise ValueError("argv first element cannot be empty")
                start = spawnp if search else spawn
                try:
                    pid = start(file, args, env[0] if with_env else os.environ)
                except OSError:
                    if mode == os.P_NOWAIT:
                        raise
                    return 127  # what the forked child of os.py exits with
                if mode == os.P_NOWAIT:
                    return pid
                return os.waitstatus_to_exitcode(wait(pid))

            spawnv.__name__ = spawnv.__qualname__ = name
            spawnv.__doc__ = "os." + name + " started with posix_spawn (py's child hygiene)."
            return spawnv

        for module in posix:
            module.posix_spawn, module.posix_spawnp = spawn, spawnp
        os.system = system
        for name, search, with_env in (
            ("spawnv", False, False), ("spawnve", False, True),
            ("spawnvp", True, False), ("spawnvpe", True, True),
        ):
            if hasattr(os, name):
                setattr(os, name, spawner(name, search, with_env))

    # subprocess (and multiprocessing's spawn and forkserver) reach
    # _posixsubprocess.fork_exec: its child gets close_fds, and the calling
    # thread's mask, emptied for the call when it is not empty.
    try:
        import _posixsubprocess
    except ImportError:
        return
    original = _posixsubprocess.fork_exec

    def fork_exec(*args, **kwargs):
        if not allow_fork and any(callable(a) for a in args):
            raise ForkNotAllowedError(
                "subprocess's preexec_fn is not allowed in py: it runs Python in "
                "a forked copy of the VM, and " + _FORK_HINT
            )
        args = list(args)
        if len(args) > 2:
            args[2] = True  # close_fds: the VM's descriptors stay out
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, ())
        if not blocked:
            return original(*args, **kwargs)
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        try:
            return original(*args, **kwargs)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    _posixsubprocess.fork_exec = fork_exec
    subprocess = sys.modules.get("subprocess")
    if subprocess is not None and hasattr(subprocess, "_fork_exec"):
        subprocess._fork_exec = fork_exec
    if not allow_fork:
        _on_import("multiprocessing.context", _safe_multiprocessing)
        _on_import("pty", _safe_pty)


def _safe_multiprocessing(context):
    # The default start method is fork on Linux before 3.14: make it spawn
    # (a fresh interpreter exec'ed per process), and have the fork method
    # refuse before it opens any pipe.
    refuse = staticmethod(_forbidden("multiprocessing's fork start method"))
    fork = getattr(context, "ForkProcess", None)
    if fork is not None:
        fork._Popen = refuse
    default = getattr(context, "_default_context", None)
    spawn = getattr(context, "_concrete_contexts", {}).get("spawn")
    if default is not None and spawn is not None and default._actual_context is None:
        if getattr(default._default_context, "_name", None) == "fork":
            default._default_context = spawn


def _safe_pty(pty):
    pty.fork = _forbidden("pty.fork()")


_IMPORT_PATCHES = {}


def _on_import(name, patch):
    # Runs patch(module) once the module is imported (now if it is).
    import sys

    module = sys.modules.get(name)
    if module is not None:
        patch(module)
        return
    if not _IMPORT_PATCHES:
        sys.meta_path.insert(0, _PatchOnImport)
    _IMPORT_PATCHES[name] = patch


class _PatchOnImport:
    # A meta path finder that finds nothing itself: for the modules in
    # _IMPORT_PATCHES it asks the finders after it and wraps the loader's
    # exec_module so the patch runs once the module has run.
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        import sys

        patch = _IMPORT_PATCHES.get(name)
        if patch is None:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is cls or find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        exec_module = getattr(loader, "exec_module", None)
        if exec_module is None:
            return spec

        class Loader:
            def __getattr__(self, attr):
                return getattr(loader, attr)

            def create_module(self, spec):
                return loader.create_module(spec)

            def exec_module(self, module):
                exec_module(module)
                module.__loader__ = module.__spec__.loader = loader
                patch(module)

        spec.loader = Loader()
        return spec


_fork_policy(_settings()[1])

# ------------------------------------------------------------ process guard
# Python runs inside the BEAM's OS process: ending that process, signalling
# it, taking over the signals the VM handles or closing its stdio ends or
# disturbs the whole VM. Unless `config :py, allow_process_exit: true`, the
# functions below are replaced, in `os` and `posix` (the same functions under
# two names), `signal`, `faulthandler` and `io`/`builtins`, with checks that
# raise ProcessExitNotAllowedError. sys.exit() is not touched: SystemExit is
# an ordinary exception that reaches the caller as an error.


class ProcessExitNotAllowedError(PermissionError):
    """Raised by py's process guard instead of ending or disturbing the
    Erlang VM's OS process: os._exit, os.abort, os.kill/os.killpg aimed at
    the VM's process (group), signal.raise_signal, signal.pthread_kill,
    signal handlers for the signals the VM owns, signal.alarm/setitimer, and
    closing or replacing file descriptors 0, 1 and 2. Raise an exception (or
    sys.exit(), an ordinary error in py) instead, stop the VM from Elixir
    (System.stop/1), or allow them with
    `config :py, allow_process_exit: true`."""


_EXIT_HINT = (
    "this would end the whole VM, not just this Python code. Raise an "
    "exception instead (sys.exit() raises SystemExit, an ordinary error in py), "
    "or stop the VM from Elixir with System.stop/1"
)
_SIGNAL_HINT = (
    "a signal sent to that process ends or disturbs the whole VM. "
    "Signal other processes only, and stop the VM from Elixir with System.stop/1"
)
_HANDLER_HINT = (
    "the VM owns this signal (it handles or deliberately ignores it). Leave it "
    "to the VM (Erlang's os:set_signal/2 chooses what it does)"
)
_TIMER_HINT = (
    "the signal this timer raises later ends that process. Use a timeout instead "
    "(a call's timeout: option, threading.Timer)"
)
_STDIO_HINT = (
    "file descriptors 0, 1 and 2 are the VM's own stdin, stdout and stderr. "
    "print() and sys.stdout already go to the caller's group leader; to wrap one "
    "of them, pass closefd=False (or work on an os.dup() copy)"
)

# The signals the BEAM owns. Measured on a running VM (/proc/self/status):
# ERTS catches SIGINT (the break handler), SIGQUIT, SIGUSR1 (crash dump) and
# SIGTERM (init:stop) at start, and ignores SIGPIPE (a write to a closed
# socket returns EPIPE instead of killing the VM), SIGCHLD and SIGFPE (py
# sets those two back to SIG_DFL at start: see the fork policy).
# Erlang's os:set_signal/2 hands SIGHUP, SIGABRT, SIGALRM, SIGUSR2 and
# SIGTSTP (and the others above) to the VM's signal server at runtime, and
# the terminal driver catches SIGWINCH and SIGCONT in an interactive shell.
# A Python handler (or faulthandler's) would replace the VM's, or, for an
# ignored signal, turn a harmless event into a crash.
_VM_SIGNAL_NAMES = (
    "SIGINT", "SIGQUIT", "SIGUSR1", "SIGTERM", "SIGPIPE", "SIGCHLD", "SIGFPE",
    "SIGHUP", "SIGABRT", "SIGALRM", "SIGUSR2", "SIGTSTP", "SIGWINCH", "SIGCONT",
)


def _refuse(what, hint):
    raise ProcessExitNotAllowedError(
        what + " is refused by py's process guard: Python runs inside the Erlang "
        "VM's OS process, so " + hint + ". To allow it anyway, set "
        "`config :py, allow_process_exit: true`."
    )


def _index(value):
    # The int behind an argument (ints, IntEnum signals, __index__ objects);
    # None when there is none: the original function then raises its own
    # TypeError.
    try:
        return _operator.index(value)
    except TypeError:
        return None


def _named(guard, original):
    guard.__name__ = original.__name__
    guard.__qualname__ = getattr(original, "__qualname__", original.__name__)
    guard.__doc__ = (
        "Checked by py's process guard (config :py, allow_process_exit).\n\n"
        + (original.__doc__ or "")
    )
    return guard


def _guard_process():
    import builtins
    import io
    import os
    import signal
    import sys

    vm_signals = frozenset(
        int(getattr(signal, name)) for name in _VM_SIGNAL_NAMES if hasattr(signal, name)
    )

    def ours(pid):
        # Does kill(pid, ...) reach the VM's process? 0 is our process group,
        # -1 every process we may signal (us too), -pgid a group; on Linux a
        # thread id of ours reaches the whole process.
        if pid in (0, -1) or pid == os.getpid():
            return True
        if pid < 0:
            return -pid == os.getpgrp()
        return os.path.exists("/proc/self/task/%d" % pid)

    def name(sig):
        try:
            return signal.Signals(sig).name
        except (TypeError, ValueError):
            return repr(sig)

    def stdio(fd):
        return fd is not None and 0 <= fd <= 2

    def patch(modules, name, make):
        for module in modules:
            original = getattr(module, name, None)
            if original is not None:
                setattr(module, name, _named(make(original), original))

    posix = [m for m in (os, sys.modules.get("posix")) if m is not None]

    # -- ending the process
    def exit_guard(original):
        def _exit(*args, **kwargs):
            _refuse("os._exit()", _EXIT_HINT)

        return _exit

    def abort_guard(original):
        def abort(*args, **kwargs):
            _refuse("os.abort()", _EXIT_HINT)

        return abort

    patch(posix, "_exit", exit_guard)
    patch(posix, "abort", abort_guard)

    # -- signals to the VM's process (signal 0 sends nothing: allowed)
    def kill_guard(original):
        def kill(pid, sig, /):
            p, s = _index(pid), _index(sig)
            if p is not None and s != 0 and ours(p):
                _refuse("os.kill(%d, %s) (the VM's own process)" % (p, name(sig)), _SIGNAL_HINT)
            return original(pid, sig)

        return kill

    def killpg_guard(original):
        def killpg(pgid, sig, /):
            g, s = _index(pgid), _index(sig)
            # killpg(1, ...) is kill(-1, ...): every process we may signal.
            if g is not None and s != 0 and g in (0, 1, os.getpgrp()):
                _refuse("os.killpg(%d, %s) (the VM's process group)" % (g, name(sig)), _SIGNAL_HINT)
            return original(pgid, sig)

        return killpg

    patch(posix, "kill", kill_guard)
    patch(posix, "killpg", killpg_guard)

    def raise_guard(original):
        def raise_signal(signalnum, /):
            if _index(signalnum) != 0:
                _refuse("signal.raise_signal(%s)" % name(signalnum), _SIGNAL_HINT)
            return original(signalnum)

        return raise_signal

    def pthread_kill_guard(original):
        # A pthread id always names a thread of this process: the VM's.
        def pthread_kill(thread_id, signalnum, /):
            if _index(signalnum) != 0:
                _refuse("signal.pthread_kill(..., %s)" % name(signalnum), _SIGNAL_HINT)
            return original(thread_id, signalnum)

        return pthread_kill

    def pidfd_guard(original):
        def pidfd_send_signal(pidfd, sig, siginfo=None, flags=0, /):
            fd = _index(pidfd)
            if fd is not None and _index(sig) != 0:
                pid = None
                try:
                    with _open("/proc/self/fdinfo/%d" % fd) as f:
                        for line in f:
                            if line.startswith("Pid:"):
                                pid = int(line.split()[1])
                except (OSError, ValueError):
                    pass
                if pid is not None and pid > 0 and ours(pid):
                    _refuse(
                        "signal.pidfd_send_signal(..., %s) (the VM's own process)" % name(sig),
                        _SIGNAL_HINT,
                    )
            return original(pidfd, sig, siginfo, flags)

        return pidfd_send_signal

    patch([signal], "raise_signal", raise_guard)
    patch([signal], "pthread_kill", pthread_kill_guard)
    patch([signal], "pidfd_send_signal", pidfd_guard)

    # -- handlers for the signals the VM owns
    def handler_guard(what):
        def make(original):
            def guard(signalnum, *args, **kwargs):
                if _index(signalnum) in vm_signals:
                    _refuse("%s(%s, ...)" % (what, name(signalnum)), _HANDLER_HINT)
                return original(signalnum, *args, **kwargs)

            return guard

        return make

    patch([signal], "signal", handler_guard("signal.signal"))
    patch([signal], "siginterrupt", handler_guard("signal.siginterrupt"))
    try:
        import faulthandler
    except ImportError:
        # Not in sub-interpreters (the parallel pool's slots).
        pass
    else:
        patch([faulthandler], "register", handler_guard("faulthandler.register"))

    def wakeup_guard(original):
        # Not per signal: the fd Python's own handlers write to. Python
        # installs no handlers in py, so only turning it off (-1) is allowed.
        def set_wakeup_fd(fd, /, *args, **kwargs):
            if _index(fd) != -1:
                _refuse("signal.set_wakeup_fd(%r)" % (fd,), _HANDLER_HINT)
            return original(fd, *args, **kwargs)

        return set_wakeup_fd

    patch([signal], "set_wakeup_fd", wakeup_guard)

    # -- timers whose signal (SIGALRM, SIGVTALRM, SIGPROF) ends the process:
    # no Python handler can be installed for it in py. Cancelling is allowed.
    def alarm_guard(original):
        def alarm(seconds, /):
            if _index(seconds) != 0:
                _refuse("signal.alarm(%r)" % (seconds,), _TIMER_HINT)
            return original(seconds)

        return alarm

    def setitimer_guard(original):
        def setitimer(which, seconds, interval=0.0, /):
            if seconds != 0:
                _refuse("signal.setitimer(%r, %r)" % (which, seconds), _TIMER_HINT)
            return original(which, seconds, interval)

        return setitimer

    patch([signal], "alarm", alarm_guard)
    patch([signal], "setitimer", setitimer_guard)

    # -- the VM's stdin, stdout and stderr
    def close_guard(original):
        def close(fd):
            if stdio(_index(fd)):
                _refuse("os.close(%r)" % (fd,), _STDIO_HINT)
            return original(fd)

        return close

    def closerange_guard(original):
        def closerange(fd_low, fd_high, /):
            low, high = _index(fd_low), _index(fd_high)
            if low is not None and high is not None and max(low, 0) < min(high, 3):
                _refuse("os.closerange(%r, %r)" % (fd_low, fd_high), _STDIO_HINT)
            return original(fd_low, fd_high)

        return closerange

    def dup2_guard(original):
        def dup2(fd, fd2, inheritable=True):
            target = _index(fd2)
            if stdio(target) and _index(fd) != target:
                _refuse("os.dup2(%r, %r)" % (fd, fd2), _STDIO_HINT)
            return original(fd, fd2, inheritable)

        return dup2

    def login_tty_guard(original):
        # Makes fd the process's stdin, stdout and stderr (and a new session).
        def login_tty(fd, /):
            _refuse("os.login_tty(%r)" % (fd,), _STDIO_HINT)

        return login_tty

    patch(posix, "close", close_guard)
    patch(posix, "closerange", closerange_guard)
    patch(posix, "dup2", dup2_guard)
    patch(posix, "login_tty", login_tty_guard)

    # open(1) and os.fdopen(1) close fd 1 when the file is closed or
    # collected, unless closefd=False (os.fdopen goes through io.open).
    _open = io.open

    def open_guard(original):
        def open(file, *args, **kwargs):
            if type(file) is int and 0 <= file <= 2:
                closefd = args[5] if len(args) > 5 else kwargs.get("closefd", True)
                if closefd:
                    _refuse("open(%d) without closefd=False" % file, _STDIO_HINT)
            return original(file, *args, **kwargs)

        return open

    guarded_open = _named(open_guard(_open), _open)
    io.open = guarded_open
    builtins.open = guarded_open


if not _settings()[2]:
    _guard_process()

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
    # Called by a slot's runner just before its interpreter ends.
    #
    # threading keeps a _DummyThread for each thread it did not start once
    # code asks for threading.current_thread() there (logging does, for
    # every record; Thread.join does, and the atexit hook of
    # concurrent.futures joins its workers while the interpreter ends). Its
    # cleanup (_DeleteDummyThreadOnDel.__del__) runs when the thread's state
    # is cleared, which for the runner and any thread still attached is
    # after the interpreter's modules are gone: it then fails noisily
    # ("Exception ignored in ... NoneType ..."). The interpreter is ending,
    # so its dummy threads need no cleanup: make it a no-op, for this
    # interpreter's threading module only.
    import sys

    threading = sys.modules.get("threading")
    cleanup = getattr(threading, "_DeleteDummyThreadOnDel", None)
    if isinstance(cleanup, type) and "__del__" in cleanup.__dict__:
        cleanup.__del__ = _no_cleanup


def _no_cleanup(self):
    pass
