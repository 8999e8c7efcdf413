# The `erlang` module every interpreter gets at start-up. `_write` is
# injected by the NIF before this runs.
import io
import sys

# Callbacks nest Python -> Elixir -> Python on one context thread, and every
# level adds its Python frames (the caller's function, the erlang.<name>
# wrapper, the code Py.eval runs) to one count: the default limit of 1,000
# ended nesting near 300 levels. Python frames cost no C stack since 3.11,
# and context threads reserve 512 MiB; 5,000 stays safe for C recursion on
# the 8 MiB threads Python code may start on 3.10. See docs/callbacks.md.
_RECURSION_LIMIT = 5000
if sys.getrecursionlimit() < _RECURSION_LIMIT:
    sys.setrecursionlimit(_RECURSION_LIMIT)


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


async def async_call(name, *args):
    """Awaitable `call`: the Elixir function runs while the event loop goes
    on, so calls gathered with asyncio.gather run at once. (It waits in a
    thread of the loop's default executor, as a call from any Python thread
    does: without the caller's bindings.)"""
    import asyncio

    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, _call, name, args)


acall = async_call


def send(pid, message):
    """Sends `message` to the Elixir process `pid`: an erlang.Pid (of this
    node or another), or the name (a str) a process is registered under."""
    if isinstance(pid, str):
        _call_internal("send_named", (pid, message))
    else:
        _send(pid, message)


def whereis(name):
    """The erlang.Pid of the process registered under `name` (a str), or
    None."""
    return _call_internal("whereis", (name,))


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
    # Kept in the module, so that the next `erlang.name` is a plain lookup
    # (this hook costs more than the call through it); dropped again when
    # the name is unregistered (`_forget_unregistered`).
    function._py_registered = True
    globals()[name] = function
    return function


def _forget_unregistered():
    # Called by a runner before a job after Py.unregister_function/1: the
    # functions kept for names no longer registered go, so that
    # `erlang.name` is an AttributeError again.
    scope = globals()
    stale = [
        name
        for name, value in scope.items()
        if getattr(value, "_py_registered", False) is True and not _registered(name)
    ]
    for name in stale:
        del scope[name]


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
        _loops.closer = _LoopCloser(loop)
    return loop


class _LoopCloser:
    # Kept in the thread-local beside the loop and nowhere else: when a
    # thread ends, its locals go, and this closes the loop then and there
    # (see _loop_close for why not later). Runners close theirs first.
    __slots__ = ("loop",)

    def __init__(self, loop):
        self.loop = loop

    def __del__(self):
        try:
            if not self.loop.is_closed() and not self.loop.is_running():
                self.loop.close()
        except Exception:
            pass


def _loop_close():
    # Called by a runner as it ends: closes its thread's loop. Left to the
    # garbage collector, the loop (in a reference cycle: its selector holds
    # its own self-pipe reader) could be finalized after its self-pipe
    # socket, and its __del__ then printed "Exception ignored in
    # BaseEventLoop.__del__ ... Invalid file descriptor: -1".
    loop = getattr(_loops, "loop", None) if _loops is not None else None
    if loop is None:
        return
    _loops.loop = None
    _loops.closer = None
    if not loop.is_closed() and not loop.is_running():
        loop.close()


def _loop_idle(wake_fd):
    # Called by the runner when nothing is queued (see idle_loop.rs): runs
    # this thread's loop while it has work, until wake_fd becomes readable
    # (a message for the runner). False when there was no work.
    loop = getattr(_loops, "loop", None) if _loops is not None else None
    if loop is None or loop.is_closed() or loop.is_running() or not _loop_has_work(loop):
        return False
    loop.add_reader(wake_fd, loop.stop)
    try:
        loop.run_forever()
    finally:
        loop.remove_reader(wake_fd)
    return True


def _loop_has_work(loop):
    # Callbacks or timers due, sockets watched besides the loop's own wake-up
    # pipe (a server), or tasks (waiting on something that will wake them).
    import asyncio

    if getattr(loop, "_ready", None) or getattr(loop, "_scheduled", None):
        return True
    selector = getattr(loop, "_selector", None)
    if selector is not None and len(selector.get_map()) > 1:
        return True
    return bool(asyncio.all_tasks(loop))


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
    import asyncio

    loop = _loop()
    # Tasks it starts may outlive the call: the runner runs the loop between
    # calls while it has work (see idle_loop.rs).
    _loop_used()
    task = asyncio.ensure_future(awaitable, loop=loop)
    try:
        return loop.run_until_complete(task)
    except BaseException:
        # Interrupted (a timeout or a close) in the loop's own code, with
        # the task still pending: cancel it, so that it does not wake up
        # inside a later call on this thread (and, say, take a message
        # from a channel meant for that call). Bounded, in case the task
        # ignores the cancellation.
        if not task.done():
            task.cancel()
            try:
                loop.run_until_complete(asyncio.wait([task], timeout=1.0))
            except BaseException:
                pass
        raise


_MISSING = object()


def _cell(source, namespace, bindings, want_assigned):
    """Runs a code cell (Py.eval of statements, the ~PY sigil): the
    statements, then the last one's value if it is an expression (as
    IPython does). Top-level `await` works. Bindings are visible during the
    cell and do not persist, unless the cell assigns them; the names it
    assigns stay in the namespace. Returns (value, assigned names or None)."""
    import ast

    flags = getattr(ast, "PyCF_ALLOW_TOP_LEVEL_AWAIT", 0)
    tree = ast.parse(source, "<cell>", "exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    names = _cell_names(source, tree)[1]
    saved = {}
    if bindings:
        for name, value in bindings.items():
            saved[name] = namespace.get(name, _MISSING)
            namespace[name] = value
    try:
        body = eval(compile(tree, "<cell>", "exec", flags=flags), namespace)
        if body is not None and hasattr(body, "__await__"):
            _await(body)
        value = None
        if last is not None:
            value = eval(compile(last, "<cell>", "eval", flags=flags), namespace)
    finally:
        for name, old in saved.items():
            if name in names:
                continue  # the cell assigned it: it stays
            if old is _MISSING:
                namespace.pop(name, None)
            else:
                namespace[name] = old
    assigned = None
    if want_assigned:
        assigned = {name: namespace[name] for name in names if name in namespace}
    return value, assigned


def _cell_names(source, tree=None):
    """(the global names a cell reads, its own functions included; the names
    it assigns), for the ~PY sigil at compile time and for cells. Python's
    symtable, or, for code it refuses (top-level await, since 3.14), the
    syntax tree."""
    import symtable

    try:
        table = symtable.symtable(source, "<cell>", "exec")
    except SyntaxError:
        return _tree_names(source, tree)
    assigned = sorted(
        s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()
    )
    read = set()

    def walk(scope, top):
        for symbol in scope.get_symbols():
            if symbol.is_referenced() and (top or symbol.is_global()):
                read.add(symbol.get_name())
        for child in scope.get_children():
            walk(child, False)

    walk(table, True)
    return sorted(read), assigned


def _tree_names(source, tree):
    # Names stored at the cell's top level (not inside its functions and
    # classes, whose own names count), imports, and every name read.
    import ast

    if tree is None:
        tree = ast.parse(source, "<cell>", "exec")
    read, assigned = set(), set()
    scopes = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)

    def visit(node, top):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Store) and top:
                assigned.add(node.id)
            elif isinstance(node.ctx, ast.Load):
                read.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and top:
            for alias in node.names:
                if alias.name != "*":
                    assigned.add(alias.asname or alias.name.split(".")[0])
        if isinstance(node, scopes):
            if top and not isinstance(node, ast.Lambda):
                assigned.add(node.name)
            top = False
        for child in ast.iter_child_nodes(node):
            visit(child, top)

    visit(tree, True)
    return sorted(read), sorted(assigned)


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


def _preload(paths, imports, code):
    # Py.preload/1 and `config :py, preload:`: paths go first on sys.path
    # (once), the code runs in __main__'s namespace, the modules are
    # imported.
    import importlib
    import sys

    for path in reversed(paths):
        if path not in sys.path:
            sys.path.insert(0, path)
    if code is not None:
        main = sys.modules["__main__"]
        exec(compile(code, "<py preload>", "exec"), main.__dict__)
    for name in imports:
        importlib.import_module(name)


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


# Channels and buffers (channel.rs, buffer.rs): Elixir's Py.Channel and
# Py.Buffer arrive in Python as these objects.


class ChannelClosed(Exception):
    """receive() on a channel that is closed and has no messages left."""


_channel_waiters = {}
# Seconds between re-polls of an asyncio channel wait (a safety net, like
# the 500 ms re-check of blocking waits in blocking.rs).
_CHANNEL_RECHECK = 0.5


def _wake_channel_waiters(key):
    for future in _channel_waiters.get(key, ()):
        if not future.done():
            future.set_result(None)


class Channel:
    """Messages sent from Elixir with Py.Channel.send/2, in order.

    receive() blocks (the GIL released) until a message arrives;
    `for msg in ch` runs until the channel is closed and drained;
    `await ch.async_receive()` waits on the running asyncio loop."""

    __slots__ = ("_c",)

    def __init__(self, capsule):
        self._c = capsule

    def receive(self, timeout=None):
        """The next message. Raises erlang.ChannelClosed once the channel is
        closed and empty, TimeoutError after `timeout` seconds."""
        return _chan_receive(self._c, timeout)

    def try_receive(self, default=None):
        """The next message if one is queued, else `default` (no waiting).
        Raises erlang.ChannelClosed once the channel is closed and empty."""
        status, message = _chan_poll(self._c)
        if status == 0:
            return message
        if status == 2:
            raise ChannelClosed("the channel is closed")
        return default

    async def async_receive(self):
        """Awaits the next message without blocking the event loop."""
        import asyncio

        while True:
            status, message = _chan_poll(self._c)
            if status == 0:
                return message
            if status == 2:
                raise ChannelClosed("the channel is closed")
            loop = asyncio.get_running_loop()
            fd = _chan_fd(self._c)
            key = (loop, fd)
            future = loop.create_future()
            waiters = _channel_waiters.setdefault(key, [])
            if not waiters:
                loop.add_reader(fd, _wake_channel_waiters, key)
            waiters.append(future)
            token = _chan_watch(self._c, True)
            try:
                # A cancel wakes the loop through the pipe, but another
                # reader of the channel can empty the pipe first: re-poll
                # now and then (the poll raises Interrupted once the call
                # is cancelled).
                await asyncio.wait((future,), timeout=_CHANNEL_RECHECK)
            finally:
                _chan_watch(self._c, False, token)
                waiters.remove(future)
                if not waiters:
                    del _channel_waiters[key]
                    loop.remove_reader(fd)

    def __iter__(self):
        return self

    def __next__(self):
        return _chan_next(self._c)

    def __aiter__(self):
        return self

    async def __anext__(self):
        try:
            return await self.async_receive()
        except ChannelClosed:
            raise StopAsyncIteration from None

    def close(self):
        """Closes the channel: Elixir's sends fail with {:error, :closed};
        queued messages can still be received."""
        _chan_close(self._c)

    @property
    def closed(self):
        return _chan_info(self._c)[1]

    def __len__(self):
        """Messages queued now."""
        return _chan_info(self._c)[0]

    def __repr__(self):
        queued, closed = _chan_info(self._c)
        return "<erlang.Channel queued=%d%s>" % (queued, " closed" if closed else "")


class Buffer:
    """Bytes written from Elixir with Py.Buffer.write/2, read like a binary
    file. Reads block (the GIL released) until enough bytes arrived or
    Elixir closed the buffer; then they return what is left, then b""."""

    __slots__ = ("_c",)

    def __init__(self, capsule):
        self._c = capsule

    def readable(self):
        return True

    def writable(self):
        return False

    def seekable(self):
        return False

    def isatty(self):
        return False

    def read(self, size=-1):
        """`size` bytes (fewer only at the end); all until closed if size < 0."""
        return _buf_read(self._c, size)

    def read1(self, size=-1):
        """What is buffered now (at least one byte unless at the end)."""
        return _buf_read1(self._c, size)

    def readline(self, size=-1):
        return _buf_readline(self._c, size)

    def readlines(self, hint=-1):
        lines = []
        total = 0
        for line in self:
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def readinto(self, b):
        """Fills `b` (fewer bytes only at the end); returns the count."""
        return _buf_readinto(self._c, b)

    def readinto1(self, b):
        data = _buf_read1(self._c, len(memoryview(b)))
        memoryview(b).cast("B")[: len(data)] = data
        return len(data)

    def read_view(self, size=-1):
        """A read-only memoryview over the next bytes, without copying them:
        at most `size` bytes and at most one written chunk. Empty at the end."""
        return _buf_view(self._c, size)

    def views(self):
        """Memoryviews over each written chunk in turn, until the end."""
        while True:
            view = _buf_view(self._c, -1)
            if not view:
                return
            yield view

    def __iter__(self):
        return self

    def __next__(self):
        line = _buf_readline(self._c, -1)
        if not line:
            raise StopIteration
        return line

    def close(self):
        """Stops reading: buffered bytes are dropped and Elixir's writes fail
        with {:error, :closed}."""
        _buf_close(self._c)

    @property
    def closed(self):
        return _buf_info(self._c)[2]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        buffered, eof, closed = _buf_info(self._c)
        state = " closed" if closed else (" eof" if eof else "")
        return "<erlang.Buffer buffered=%d%s>" % (buffered, state)


io.BufferedIOBase.register(Buffer)
