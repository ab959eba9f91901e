"""Per-address connection slots with a circuit breaker, and a domain's share of the crawl's
concurrency (its :class:`Turn`), so that one host that stops answering cannot stall a crawl.

* At most ``per_address`` connections to one (address, port) at a time: many domains
  share a hosted policy server or an MX address, and it must not be hammered.
* A domain waiting for such a slot hands its turn (its share of ``--concurrency``) back
  while it waits, so the domains behind it keep working; the wait is bounded by the
  domain's own deadline (``host_busy`` when it runs out).
* After ``threshold`` attempts in a row that got no answer in time (timeouts), the
  address's circuit opens: for ``cooldown`` seconds nobody connects there and each
  domain gets the verdict ``host_unresponsive`` with the reason; then one trial
  connection (half-open) closes the circuit on an answer or opens it again.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, TypeVar

T = TypeVar("T")

HOST_UNRESPONSIVE = "host_unresponsive"   # the circuit is open: not contacted
HOST_BUSY = "host_busy"                   # no slot free before the domain's deadline


@dataclass(frozen=True, slots=True)
class Denied:
    """Why an attempt was not made: a stable ``code`` and the reason in words."""

    code: str
    detail: str


class Turn:
    """One domain's share of the crawl's concurrency and its deadline (monotonic seconds,
    ``budget`` after its turn began).

    Held while the domain works; handed back while any of its tasks waits for an address
    slot and taken again when the last of them stops waiting."""

    __slots__ = ("_sem", "budget", "deadline", "_waiting", "_held")

    def __init__(self, sem: asyncio.Semaphore | None, budget: float) -> None:
        self._sem = sem
        self.budget = budget
        self.deadline = time.monotonic() + budget
        self._waiting = 0
        self._held = False

    async def __aenter__(self) -> "Turn":
        if self._sem is not None:
            await self._sem.acquire()
            self._held = True
        self.deadline = time.monotonic() + self.budget
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._held and self._sem is not None:
            self._sem.release()
            self._held = False

    def pause(self) -> None:
        self._waiting += 1
        if self._waiting == 1 and self._held and self._sem is not None:
            self._sem.release()
            self._held = False

    async def resume(self) -> None:
        self._waiting -= 1
        if self._waiting == 0 and not self._held and self._sem is not None:
            await self._sem.acquire()
            self._held = True


class _Address:
    """The state of one (address, port): its slots and its circuit."""

    __slots__ = ("slots", "users", "failures", "opened_at", "trial", "last")

    def __init__(self, per_address: int) -> None:
        self.slots = asyncio.Semaphore(per_address)
        self.users = 0             # attempts holding or waiting for a slot
        self.failures = 0          # unanswered attempts in a row
        self.opened_at = 0.0       # when the circuit (last) opened
        self.trial = False         # the half-open trial attempt is in flight
        self.last = ""             # the last failure, for the reason


class AddressGate:
    """Slots and circuit breakers per (address, port), for one kind of connection."""

    def __init__(self, per_address: int = 8, threshold: int = 3, cooldown: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_address = per_address
        self.threshold = max(1, threshold)
        self.cooldown = cooldown
        self.clock = clock
        self._states: dict[tuple[str, int], _Address] = {}
        self.denied = {HOST_UNRESPONSIVE: 0, HOST_BUSY: 0}

    @property
    def tracked(self) -> list[tuple[str, int]]:
        """The (address, port) pairs with state: in use, or with unanswered attempts."""
        return list(self._states)

    async def run(self, address: str, port: int, turn: Turn, reserve: float,
                  attempt: Callable[[], Awaitable[T]], failed: Callable[[T], str | None]) -> T | Denied:
        """``attempt()`` through a slot of (address, port), or why not. ``failed(result)``
        says why a result got no answer (a timeout), None when the address answered.
        The slot is waited for until ``reserve`` seconds before the turn's deadline."""
        key = (address, port)
        st = self._states.get(key)
        if st is None:
            st = self._states[key] = _Address(self.per_address)
        st.users += 1
        try:
            denied, _ = self._closed_or_denied(st, address, port, claim=False)
            if denied is not None:
                return denied
            if not await self._acquire(st, turn, turn.deadline - reserve):
                return self._deny(HOST_BUSY, f"no free connection slot to {address}:{port} before the "
                                             f"domain's deadline ({self.per_address} in use by this crawl)")
            trial = False
            try:
                denied, trial = self._closed_or_denied(st, address, port, claim=True)
                if denied is not None:
                    return denied
                result = await attempt()
                self._record(st, failed(result), trial)
                return result
            finally:
                if trial:
                    st.trial = False
                st.slots.release()
        finally:
            st.users -= 1
            if st.users == 0 and st.failures == 0:
                del self._states[key]  # forget healthy idle addresses: memory stays flat

    def _closed_or_denied(self, st: _Address, address: str, port: int, claim: bool) -> tuple[Denied | None, bool]:
        """(None, is_trial) when an attempt may go ahead (``claim``: it becomes the half-open
        trial of an open circuit whose cool-down is over), else (why not, False)."""
        if st.failures < self.threshold:
            return None, False
        waited = self.clock() - st.opened_at
        if not st.trial and waited >= self.cooldown:
            if claim:
                st.trial = True
            return None, claim
        return self._deny(HOST_UNRESPONSIVE,
                          f"not contacted: {address}:{port} left the last {st.failures} attempts of this "
                          f"crawl unanswered ({st.last}); circuit open {waited:.0f}s, next trial after "
                          f"{self.cooldown:g}s"), False

    def _deny(self, code: str, detail: str) -> Denied:
        self.denied[code] += 1
        return Denied(code, detail)

    async def _acquire(self, st: _Address, turn: Turn, until: float) -> bool:
        if not st.slots.locked():
            await st.slots.acquire()  # a free slot: no wait, whatever the deadline
            return True
        turn.pause()
        acquired = False
        try:
            try:
                async with asyncio.timeout(max(0.0, until - self.clock())):
                    await st.slots.acquire()
                acquired = True
            except TimeoutError:
                pass
        finally:
            try:
                await turn.resume()
            except BaseException:
                if acquired:
                    st.slots.release()
                raise
        return acquired

    def _record(self, st: _Address, failure: str | None, trial: bool) -> None:
        if failure is None:
            st.failures = 0  # an answer closes the circuit
            return
        st.last = failure
        st.failures += 1
        if trial or st.failures == self.threshold:
            st.opened_at = self.clock()


__all__ = ["HOST_BUSY", "HOST_UNRESPONSIVE", "AddressGate", "Denied", "Turn"]
