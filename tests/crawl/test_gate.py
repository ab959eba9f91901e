"""The address gate: per-address slots, the circuit breaker and the domain's turn
(collectors/crawl/gate.py), driven by plain coroutines and a controllable clock."""

from __future__ import annotations

import asyncio

from collectors.crawl.gate import HOST_BUSY, HOST_UNRESPONSIVE, AddressGate, Denied, Turn


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _attempt(result: str, calls: list[str], delay: float = 0.0):
    async def go() -> str:
        calls.append(result)
        await asyncio.sleep(delay)
        return result
    return go


def _failed(result: str) -> str | None:
    return "timeout during tls" if result == "timeout" else None


def test_the_circuit_opens_after_unanswered_attempts_and_a_trial_closes_it() -> None:
    clock, calls = Clock(), []

    async def main() -> list[object]:
        gate = AddressGate(per_address=4, threshold=3, cooldown=60, clock=clock)
        turn = Turn(None, 30)
        out: list[object] = [await gate.run("192.0.2.1", 443, turn, 1, _attempt("timeout", calls), _failed)
                             for _ in range(3)]
        out.append(await gate.run("192.0.2.1", 443, turn, 1, _attempt("ok", calls), _failed))  # not made
        out.append(await gate.run("192.0.2.1", 25, turn, 1, _attempt("ok", calls), _failed))   # another port
        clock.now += 61
        out.append(await gate.run("192.0.2.1", 443, turn, 1, _attempt("ok", calls), _failed))  # the trial
        out.append(await gate.run("192.0.2.1", 443, turn, 1, _attempt("ok", calls), _failed))  # closed again
        return out

    out = asyncio.run(main())
    assert out[:3] == ["timeout"] * 3
    assert isinstance(out[3], Denied) and out[3].code == HOST_UNRESPONSIVE
    assert "192.0.2.1:443" in out[3].detail and "timeout during tls" in out[3].detail
    assert out[4:] == ["ok", "ok", "ok"]
    assert calls == ["timeout"] * 3 + ["ok"] * 3


def test_a_failed_trial_opens_the_circuit_again_and_one_trial_at_a_time() -> None:
    clock, calls = Clock(), []

    async def main() -> list[object]:
        gate = AddressGate(per_address=4, threshold=1, cooldown=10, clock=clock)
        turn = Turn(None, 30)
        await gate.run("192.0.2.2", 443, turn, 1, _attempt("timeout", calls), _failed)
        clock.now += 11
        # two domains after the cool-down: one trial (slow, unanswered), the other refused meanwhile
        trial = asyncio.ensure_future(gate.run("192.0.2.2", 443, turn, 1, _attempt("timeout", calls, 0.05), _failed))
        await asyncio.sleep(0)
        other = await gate.run("192.0.2.2", 443, turn, 1, _attempt("ok", calls), _failed)
        first = await trial
        after = await gate.run("192.0.2.2", 443, turn, 1, _attempt("ok", calls), _failed)
        return [first, other, after]

    first, other, after = asyncio.run(main())
    assert first == "timeout"
    assert isinstance(other, Denied) and other.code == HOST_UNRESPONSIVE
    assert isinstance(after, Denied)  # the failed trial re-opened it for another cool-down
    assert calls == ["timeout", "timeout"]


def test_answers_in_between_keep_the_circuit_closed() -> None:
    calls: list[str] = []

    async def main() -> None:
        gate = AddressGate(per_address=2, threshold=2, cooldown=60)
        turn = Turn(None, 30)
        for result in ["timeout", "ok"] * 5:
            assert await gate.run("192.0.2.3", 443, turn, 1, _attempt(result, calls), _failed) == result

    asyncio.run(main())
    assert len(calls) == 10


def test_a_waiting_domain_hands_its_turn_back() -> None:
    # one turn for the whole crawl: domain A waits for a busy address; domain B, for
    # another address, must still get the turn and finish first
    order: list[str] = []

    async def main() -> None:
        active = asyncio.Semaphore(1)
        gate = AddressGate(per_address=1, threshold=3, cooldown=60)
        release = asyncio.Event()

        async def hold() -> str:
            await release.wait()
            return "ok"

        async def domain(name: str, address: str, attempt) -> None:
            async with Turn(active, 30) as turn:
                await gate.run(address, 443, turn, 1, attempt, _failed)
                order.append(name)

        holder = asyncio.ensure_future(gate.run("192.0.2.4", 443, Turn(None, 30), 1, hold, _failed))
        await asyncio.sleep(0)
        a = asyncio.ensure_future(domain("a", "192.0.2.4", _attempt("ok", [])))
        await asyncio.sleep(0.01)
        await asyncio.wait_for(domain("b", "192.0.2.5", _attempt("ok", [])), 1)
        release.set()
        await asyncio.gather(holder, a)

    asyncio.run(main())
    assert order == ["b", "a"]


def test_waiting_ends_at_the_domains_deadline_as_host_busy() -> None:
    async def main() -> object:
        gate = AddressGate(per_address=1, threshold=3, cooldown=60)
        never = asyncio.Event()

        async def hold() -> str:
            await never.wait()
            return "ok"

        holder = asyncio.ensure_future(gate.run("192.0.2.6", 443, Turn(None, 30), 1, hold, _failed))
        await asyncio.sleep(0)
        result = await asyncio.wait_for(gate.run("192.0.2.6", 443, Turn(None, 1.05), 1,
                                                 _attempt("ok", []), _failed), 2)
        holder.cancel()
        return result

    result = asyncio.run(main())
    assert isinstance(result, Denied) and result.code == HOST_BUSY and "192.0.2.6:443" in result.detail


def test_healthy_idle_addresses_are_forgotten() -> None:
    async def main() -> AddressGate:
        gate = AddressGate()
        for i in range(100):
            await gate.run(f"192.0.2.{i}", 443, Turn(None, 30), 1, _attempt("ok", []), _failed)
        await gate.run("198.51.100.1", 443, Turn(None, 30), 1, _attempt("timeout", []), _failed)
        return gate

    gate = asyncio.run(main())
    assert gate.tracked == [("198.51.100.1", 443)]


def test_hosts_not_contacted_are_counted_across_shards_as_on_one_machine() -> None:
    """A cluster adds its shards' counts (add_counts); the gate's verdicts are counts too, so
    a distributed crawl's summary says how many were not contacted, as a single one does."""
    from collectors.crawl.runner import CrawlStats

    shards = [CrawlStats(domains=3, seconds=1.0, not_contacted={HOST_UNRESPONSIVE: 2}),
              CrawlStats(domains=2, seconds=1.0, not_contacted={HOST_UNRESPONSIVE: 1, HOST_BUSY: 4})]
    cluster, serial = CrawlStats(), CrawlStats()
    for shard in shards:
        cluster.add_counts(shard)
        serial.add(shard)
    assert cluster.not_contacted == serial.not_contacted == {HOST_UNRESPONSIVE: 3, HOST_BUSY: 4}
    assert (cluster.domains, cluster.seconds, serial.seconds) == (5, 0.0, 2.0)
