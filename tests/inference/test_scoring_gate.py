"""The vLLM backend's scoring gate: a request scoring its prompt never shares the server with
another request (vLLM's CPU engine dies on that batch), and ordinary requests still run side
by side. The real engine's side is in test_vllm.py."""

from __future__ import annotations

import asyncio

from core.inference.backends.scoring_gate import ScoringGate


async def _settle(until=lambda: False) -> None:
    """Let every ready task run (or stop as soon as `until()` holds)."""
    for _ in range(200):
        if until():
            return
        await asyncio.sleep(0)


async def _scenario() -> list[str]:
    gate, log = ScoringGate(), []
    done = {name: asyncio.Event() for name in ("chat1", "chat2", "score", "chat3")}

    async def hold(name: str, kind: str) -> None:
        async with gate.alone() if kind == "alone" else gate.shared():
            log.append(f"{name} in")
            await done[name].wait()
        log.append(f"{name} out")

    tasks = [
        asyncio.create_task(hold("chat1", "shared")),
        asyncio.create_task(hold("chat2", "shared")),
    ]
    await _settle(lambda: len(log) == 2)
    tasks.append(asyncio.create_task(hold("score", "alone")))
    await _settle()
    tasks.append(asyncio.create_task(hold("chat3", "shared")))  # arrives while the score waits
    await _settle()
    log.append("-")  # nothing new went in: the score waits for both chats, chat3 behind it
    for name in ("chat1", "chat2", "score", "chat3"):
        done[name].set()
        await _settle(lambda name=name: f"{name} out" in log)
        await _settle()
    await asyncio.gather(*tasks)
    return log


def test_a_scoring_waits_for_the_running_requests_and_holds_back_new_ones() -> None:
    assert asyncio.run(_scenario()) == [
        "chat1 in", "chat2 in", "-",
        "chat1 out",
        "chat2 out", "score in",
        "score out", "chat3 in",
        "chat3 out",
    ]  # fmt: skip


def test_a_cancelled_scoring_lets_the_requests_it_held_back_go() -> None:
    async def scenario() -> list[str]:
        gate, release, entered = ScoringGate(), asyncio.Event(), []

        async def chat(name: str) -> None:
            async with gate.shared():
                entered.append(name)
                await release.wait()

        async def score() -> None:
            async with gate.alone():
                entered.append("score")

        tasks = [asyncio.create_task(chat("running"))]
        await _settle(lambda: entered == ["running"])
        scoring = asyncio.create_task(score())
        await _settle()
        tasks.append(asyncio.create_task(chat("held back")))
        await _settle()
        assert entered == ["running"]
        scoring.cancel()  # its client went away while it waited
        await _settle(lambda: "held back" in entered)
        assert entered == ["running", "held back"]  # beside the running one, not after it
        release.set()
        await asyncio.gather(*tasks)
        return entered

    assert asyncio.run(scenario()) == ["running", "held back"]
