"""One look at the database for every explorer's held poll.

A held poll used to look for work itself every `poll_recheck_seconds` and at every change
that may let a scan launch: with thousands of explorers, thousands of reads per change. The
`PollWatch` looks once instead (`store.explorers.launch_work`: the targets of the due scans,
and the explorers that scans occupy), and wakes only the polls whose explorer could be
handed something; those then claim their work as before (`launch.next_work`).

It runs while polls are held, and arms the change signal before each look, so a change
committed after a look began is always followed by another look. A poll held while the
watch runs is judged at once by the last look (anything committed since is still to be
looked at); until the watch's first look, polls look for themselves. If a look fails, every
held poll is woken to look for itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from surveyor.core.resources import Explorer
from surveyor.store.change_bus import AsyncSignal
from surveyor.store.explorers import LaunchWork

log = logging.getLogger("surveyor.console")


@dataclass(eq=False)
class HeldPoll:
    """An explorer's poll waiting for work; `woken` is set when it may have some."""

    explorer: Explorer
    woken: asyncio.Event = field(default_factory=asyncio.Event)


class PollWatch:
    """Wakes the held polls whose explorer may be handed work (see the module's docstring).

    `look` reads the launch work (it runs in a thread); `recheck` is how often it looks
    without news (work that becomes due with time, or changes this process is not told of).
    """

    def __init__(
        self, signal: AsyncSignal, look: Callable[[], LaunchWork], *, recheck: float
    ) -> None:
        self._signal = signal
        self._look = look
        self._recheck = recheck
        self._held: set[HeldPoll] = set()
        self._runner: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: the last look of the running watch
        self._last: LaunchWork | None = None

    def hold(self, explorer: Explorer) -> HeldPoll:
        """Hold a poll of `explorer`: it is woken (`wait`) whenever it may have work."""
        poll = HeldPoll(explorer)
        self._loop = asyncio.get_running_loop()
        self._held.add(poll)
        if self._runner is None or self._runner.done():
            self._last = None
            self._runner = asyncio.get_running_loop().create_task(self._run(), name="poll-watch")
        if self._last is None or self._last.may_serve(explorer):
            poll.woken.set()  # no look to judge by yet, or work: the poll looks itself
        return poll

    def release(self, poll: HeldPoll) -> None:
        self._held.discard(poll)
        if not self._held and self._runner is not None:
            self._runner.cancel()  # the next held poll starts another
            self._runner = None
            self._last = None

    def woken(self, poll: HeldPoll) -> bool:
        """Whether the poll has been woken since it last looked (the wake-up is then spent)."""
        woken = poll.woken.is_set()
        poll.woken.clear()
        return woken

    async def wait(
        self, poll: HeldPoll, timeout: float, *, unless: asyncio.Future[None] | None = None
    ) -> bool:
        """Wait up to `timeout` seconds for the poll to be woken, or until `unless` is done
        (its explorer went away); True when it was woken (its wake-up is then spent)."""
        with self._signal.parked(), contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, timeout)):
                if unless is None:
                    await poll.woken.wait()
                else:
                    woken = asyncio.ensure_future(poll.woken.wait())
                    try:
                        await asyncio.wait((woken, unless), return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        woken.cancel()
        return self.woken(poll)

    def wake_all(self) -> None:
        """Wake every held poll (the console is stopping: each then answers at once). Safe
        from any thread, and from a signal handler."""
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed: no poll is held
            loop.call_soon_threadsafe(self._wake_all)

    def _wake_all(self) -> None:
        for poll in self._held:
            poll.woken.set()

    async def _run(self) -> None:
        while self._held:
            armed = self._signal.arm()
            try:
                work: LaunchWork | None = await asyncio.to_thread(self._look)
            except Exception:  # the polls look for themselves; the next look may succeed
                log.warning("looking for explorers' work failed", exc_info=True)
                work = None
            self._last = work
            for poll in list(self._held):
                if work is None or work.may_serve(poll.explorer):
                    poll.woken.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._recheck):
                    await armed.wait()
