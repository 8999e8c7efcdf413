# The `erlang` module's third part: Python threads that run no job, and
# services. `_origin`, `_adopt`, `_stop_token`, `_stop_enter`, `_stop_set`
# and `_context_id` are injected by the NIF (threads.rs) before this runs.
#
# A thread started during a call adopts that call's origin: its print goes
# to the call's group leader while the call runs, then to the context
# owner's; erlang.self() there is the call's process. Items submitted to a
# ThreadPoolExecutor (asyncio.to_thread and run_in_executor included) adopt
# the origin of the call that submitted them, for as long as they run.
import threading as _threading

_thread_start = _threading.Thread.start


def _adopting(origin, function):
    def adopted(*args, **kwargs):
        before = _adopt(origin)
        try:
            return function(*args, **kwargs)
        finally:
            _adopt(before)

    return adopted


def _start(self):
    origin = _origin()
    if origin is not None:
        self.run = _adopting(origin, self.run)
    _patch_executor()
    return _thread_start(self)


_threading.Thread.start = _start

_executor_patched = False


def _patch_executor():
    # concurrent.futures costs 25 ms to import: patched once it is in use
    # (an executor starts a thread before it runs its first item, and that
    # thread adopts the submitting call's origin).
    global _executor_patched
    import sys

    if _executor_patched:
        return
    module = sys.modules.get("concurrent.futures.thread")
    if module is None:
        return
    _executor_patched = True
    submit = module.ThreadPoolExecutor.submit

    def _submit(self, fn, /, *args, **kwargs):
        origin = _origin()
        if origin is not None:
            fn = _adopting(origin, fn)
        return submit(self, fn, *args, **kwargs)

    _submit.__doc__ = submit.__doc__
    module.ThreadPoolExecutor.submit = _submit


# ------------------------------------------------------------ services
#
# A service (Py.Service) runs a function on a thread of its own in this
# interpreter; a coroutine function (or one returning an awaitable) gets an
# event loop of its own there, so the tasks and servers it starts keep
# running between calls. The thread reports its end to the service's
# watcher process with erlang.send.


class _Service:
    __slots__ = ("token", "context", "runner", "stop", "thread", "loop", "task", "stopping")


_services = {}


def _service_start(token, watcher, module, name, args, kwargs):
    """Starts a service for Py.Service.start_link/4 (in the caller's
    namespace); its end goes to the watcher process."""
    import importlib
    import sys

    if module == "__main__":
        scope = sys._getframe(1).f_globals
        if name not in scope:
            raise NameError("name %r is not defined in the context's __main__" % name)
        function = scope[name]
    else:
        function = getattr(importlib.import_module(module), name)
    if not callable(function):
        raise TypeError("%s.%s is not callable" % (module, name))
    service = _Service()
    service.token = token
    service.context = _context_id()
    service.runner = _threading.get_ident()
    service.stop = _stop_token()
    service.loop = None
    service.task = None
    service.stopping = False
    origin = _origin(watcher)
    service.thread = _threading.Thread(
        target=_service_main,
        args=(service, origin, watcher, function, args, kwargs),
        name="py-service-%s.%s" % (module, name),
    )
    _services[token] = service
    try:
        _thread_start(service.thread)
    except BaseException:
        del _services[token]
        raise


def _service_main(service, origin, watcher, function, args, kwargs):
    _adopt(origin)
    _stop_enter(service.stop)
    outcome = ("stopped",)
    awaitable = None
    try:
        try:
            result = function(*args, **kwargs)
            if hasattr(result, "__await__"):
                awaitable = result
                result = _service_loop(service, awaitable)
            outcome = ("ok", result)
        except BaseException as error:
            if not service.stopping:
                outcome = _service_error(error)
    except BaseException:
        pass  # a stop's erlang.Interrupted, landing late
    # A stop raises at most once; _stop_enter(None) clears one still pending.
    while True:
        try:
            _stop_enter(None)
            break
        except BaseException:
            pass
    _adopt(None)
    # A coroutine a stop kept from running: closed, without the "never
    # awaited" warning.
    if awaitable is not None and hasattr(awaitable, "close"):
        awaitable.close()
    try:
        send(watcher, ("py_service_end", service.token) + outcome)
    except BaseException as error:
        # The result cannot cross into Elixir.
        send(watcher, ("py_service_end", service.token) + _service_error(error))


def _service_loop(service, awaitable):
    import asyncio

    async def main():
        return await awaitable

    if _stop_loop(service.stop):
        raise Interrupted()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        service.task = loop.create_task(main())
        service.loop = loop
        if service.stopping:
            service.task.cancel()
        return loop.run_until_complete(service.task)
    finally:
        try:
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            service.loop = None
            asyncio.set_event_loop(None)
            loop.close()


def _service_error(error):
    import traceback

    kind = type(error)
    name = kind.__qualname__
    if kind.__module__ not in ("builtins", "__main__"):
        name = kind.__module__ + "." + name
    text = "".join(traceback.format_exception(kind, error, error.__traceback__))
    return ("error", name, str(error), text)


def _service_stop(token):
    """Asks a service to stop; its end reaches the watcher."""
    service = _services.get(token)
    if service is not None:
        _stop(service)
    return service is not None


def _service_forget(token):
    """After its end message: waits for the thread's last step, and forgets
    the service."""
    service = _services.pop(token, None)
    if service is not None:
        service.thread.join(5.0)


def _stop(service):
    if service.stopping:
        return
    service.stopping = True
    loop, task = service.loop, service.task
    if loop is not None and task is not None:
        try:
            loop.call_soon_threadsafe(task.cancel)
        except RuntimeError:
            pass  # the loop has just closed
    # The thread's own code raises erlang.Interrupted, unless it runs its
    # loop (see _stop_loop); a wait on a channel or buffer ends.
    _stop_set(service.stop, service.thread.ident)


def _services_stop(context, runner_thread, timeout=2.0):
    # A context closed (`context`), or the runner that started them ended
    # (`runner_thread`), or the interpreter is ending (neither): stop the
    # services, and wait a little for their threads.
    import time

    me = _threading.get_ident()
    chosen = [
        s
        for s in list(_services.values())
        if (context is None or s.context == context) and (not runner_thread or s.runner == me)
    ]
    for service in chosen:
        _stop(service)
    deadline = time.monotonic() + timeout
    for service in chosen:
        service.thread.join(max(0.0, deadline - time.monotonic()))
        if not service.thread.is_alive():
            _services.pop(service.token, None)
