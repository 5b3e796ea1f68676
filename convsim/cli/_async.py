"""Run a command's async work so that Ctrl-C always ends it with exit code 130."""

from __future__ import annotations

import signal
import threading
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import TypeVar

T = TypeVar("T")


def run(fn: Callable[[], Awaitable[T]]) -> T:
    """``anyio.run(fn)``, but an interrupt is never mistaken for a finished command.

    On Ctrl-C the event loop cancels the main task, and the loop turns that back into
    ``KeyboardInterrupt`` only if the cancellation comes out of the task. Code that ends
    cleanly when cancelled (a task group shutting its workers down, a writer flushing)
    can absorb it, and the command then returned as if it had finished, with exit code 0
    on a cut-short run. So every SIGINT is noted here, whatever the loop does with it.

    Args:
        fn: The command's async entry point.

    Returns:
        What ``fn`` returned.

    Raises:
        KeyboardInterrupt: A SIGINT arrived while ``fn`` ran.
    """
    import anyio

    interrupted = threading.Event()

    async def watched() -> T:
        loop_handler = (
            signal.getsignal(signal.SIGINT)
            if threading.current_thread() is threading.main_thread()
            else None
        )
        # The loop installed its own handler when it started: keep it, and note. A SIGINT
        # that is ignored (a background job) or not handled from Python stays as it is.
        if loop_handler is not None and loop_handler != signal.SIG_IGN:

            def note(signum: int, frame: FrameType | None) -> None:
                interrupted.set()
                if callable(loop_handler):
                    loop_handler(signum, frame)
                else:
                    raise KeyboardInterrupt

            signal.signal(signal.SIGINT, note)
            try:
                return await fn()
            finally:
                signal.signal(signal.SIGINT, loop_handler)
        return await fn()

    result = anyio.run(watched)
    if interrupted.is_set():
        raise KeyboardInterrupt
    return result
