"""Ctrl-C ends a command with 130 even when the cancelled work ends cleanly."""

import os
import signal
from collections.abc import Iterator

import anyio
import anyio.lowlevel
import pytest

from convsim.cli._async import run


@pytest.fixture(autouse=True)
def _ctrl_c_as_in_a_terminal() -> Iterator[None]:
    # A test runner started in the background inherits SIGINT ignored; a terminal user's
    # process has Python's default handler, which is what these tests are about.
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


async def _swallows() -> str:
    try:
        os.kill(os.getpid(), signal.SIGINT)
        await anyio.sleep(5)
    except BaseException:
        return "finished"
    return "slept"


def test_plain_anyio_run_loses_an_interrupt_the_work_absorbed() -> None:
    # The reason for the wrapper: the loop turns the interrupt into a normal return.
    assert anyio.run(_swallows) == "finished"


def test_an_absorbed_interrupt_still_raises_keyboard_interrupt() -> None:
    with pytest.raises(KeyboardInterrupt):
        run(_swallows)


def test_an_interrupt_that_propagates_raises_keyboard_interrupt() -> None:
    async def sleeps() -> None:
        os.kill(os.getpid(), signal.SIGINT)
        await anyio.sleep(5)

    with pytest.raises(KeyboardInterrupt):
        run(sleeps)


def test_without_an_interrupt_the_result_comes_back_and_the_handler_is_restored() -> None:
    before = signal.getsignal(signal.SIGINT)

    async def work() -> int:
        await anyio.lowlevel.checkpoint()
        return 7

    assert run(work) == 7
    assert signal.getsignal(signal.SIGINT) is before
