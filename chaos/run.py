"""One chaos run: load, a seeded plan of faults, a settle phase, then the exactly-once checks.

``python -m chaos [--quick] [--seed N] [--work-dir DIR]``. The plan (which fault, in which order,
how long each lasts, which member dies) comes from one seeded RNG and is printed with the seed;
the moments are wall-clock, so two runs with one seed break the same things in the same order
but not at the same offsets. Every loop is bounded in count and time (``Size.deadline_s``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import platform
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from chaos.report import markdown, table
from chaos.world import (
    PIPELINE,
    PROXY,
    SPEC,
    STAGES,
    Infrastructure,
    Load,
    Member,
    catalog_of,
    create_topics,
)
from streamcoord.devtools.consistency import replay_mismatches, run_statuses, triggers
from streamcoord.runtime import TopicNames

RESULTS = Path(__file__).parent / "results"
FAULTS = ("latency", "cut", "blackhole", "reset")


@dataclass(frozen=True)
class Size:
    name: str
    runs: int
    kills: int
    broker_restarts: int
    rebalances: int
    faults_per_kind: int
    members: int
    partitions: int
    load_seconds: float
    settle_seconds: float
    deadline_s: float


FULL = Size("full", runs=1000, kills=60, broker_restarts=3, rebalances=8, faults_per_kind=3,
            members=2, partitions=4, load_seconds=420, settle_seconds=240,
            deadline_s=900)  # fmt: skip
QUICK = Size("quick", runs=100, kills=5, broker_restarts=1, rebalances=2, faults_per_kind=1,
             members=2, partitions=2, load_seconds=60, settle_seconds=120,
             deadline_s=300)  # fmt: skip
#: Rough seconds each action takes besides the gap before it: spreads the plan over the load.
_COST = {"kill": 1.0, "rebalance": 0.5, "broker": 25.0, "latency": 5.5, "cut": 3.5,
         "blackhole": 4.5, "reset": 2.0}  # fmt: skip


def plan(size: Size, rng: random.Random) -> list[str]:
    """The actions in order: kills, joins/leaves and faults shuffled; broker restarts spread out."""
    actions = ["kill"] * size.kills + ["rebalance"] * size.rebalances
    actions += [kind for kind in FAULTS for _ in range(size.faults_per_kind)]
    rng.shuffle(actions)
    for i in range(size.broker_restarts):
        at = round(len(actions) * (i + 1) / (size.broker_restarts + 1)) + i
        actions.insert(at, "broker")
    return actions


@dataclass
class Tally:
    kills: int = 0
    kills_serving: int = 0
    broker_restarts: int = 0
    broker_down_s: list[float] = field(default_factory=list)
    rebalances: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    unexpected_exits: Counter[str] = field(default_factory=Counter)
    log: list[str] = field(default_factory=list)


class Chaos:
    def __init__(self, size: Size, seed: int, work: Path) -> None:
        self.size = size
        self.seed = seed
        self.rng = random.Random(seed)
        self.work = work
        self.tally = Tally()
        self.started = time.monotonic()
        self.infra: Infrastructure | None = None
        self.members: list[Member] = []
        self.extra: Member | None = None

    def say(self, message: str) -> None:
        line = f"[{time.monotonic() - self.started:7.1f}s] {message}"
        self.tally.log.append(line)
        print(line, flush=True)

    # --- the actions ---

    async def act(self, action: str) -> None:
        infra = self.infra
        assert infra is not None
        rng = self.rng
        if action == "kill":
            running = [m for m in self.members if m.running]
            if not running:
                self.say("kill: no member running, skipped")
                return
            # A member deciding (a partition restored) dies rather than one still starting up:
            # that is where a lost or duplicated trigger would come from.
            deciding = [m for m in running if m.logged_since_start(b"restored partition")]
            victim = rng.choice(deciding or running)
            victim.wanted = False
            serving = bool(deciding)
            await victim.kill()
            self.tally.kills += 1
            self.tally.kills_serving += serving
            delay = rng.uniform(0.1, 2.0)
            moment = "while serving" if serving else "while starting"
            self.say(f"kill -9 {victim.name} {moment} (#{self.tally.kills}), "
                     f"restart in {delay:.1f}s")  # fmt: skip
            await asyncio.sleep(delay)  # the member stays dead this long, on purpose
            await victim.start()
        elif action == "rebalance":
            assert self.extra is not None
            if self.extra.wanted:
                code = await self.extra.stop()
                self.say(f"rebalance: {self.extra.name} leaves (exit {code})")
            else:
                await self.extra.start()
                joined = await self.extra.joined()
                self.say(f"rebalance: {self.extra.name} joins ({'in' if joined else 'NOT in'} "
                         "the group within 60s)")  # fmt: skip
            self.tally.rebalances += 1
        elif action == "broker":
            hard = self.tally.broker_restarts % 2 == 1
            self.say(f"broker restart ({'SIGKILL' if hard else 'SIGTERM'})")
            down = await asyncio.to_thread(infra.restart_broker, hard=hard)
            self.tally.broker_restarts += 1
            self.tally.broker_down_s.append(round(down, 1))
            self.say(f"broker back after {down:.1f}s")
        else:
            await self.fault(action, infra)

    async def fault(self, kind: str, infra: Infrastructure) -> None:
        proxy, rng = infra.toxiproxy, self.rng
        if kind == "latency":
            latency, hold = rng.randint(200, 1000), rng.uniform(3, 8)
            self.say(f"fault: +{latency}ms latency both ways for {hold:.1f}s")
            for stream in ("upstream", "downstream"):
                attributes = {"latency": latency, "jitter": latency // 4}
                proxy.add_toxic(PROXY, f"lat-{stream}", "latency", attributes, stream=stream)
            await asyncio.sleep(hold)
            for stream in ("upstream", "downstream"):
                proxy.remove_toxic(PROXY, f"lat-{stream}")
        elif kind == "cut":
            hold = rng.uniform(2, 5)
            self.say(f"fault: proxy disabled (connections closed, refused) for {hold:.1f}s")
            proxy.set_enabled(PROXY, False)
            await asyncio.sleep(hold)
            proxy.set_enabled(PROXY, True)
        elif kind == "blackhole":
            hold = rng.uniform(3, 6)
            self.say(f"fault: data dropped, connections closed after 2s, for {hold:.1f}s")
            proxy.add_toxic(PROXY, "blackhole", "timeout", {"timeout": 2000}, stream="upstream")
            await asyncio.sleep(hold)
            proxy.remove_toxic(PROXY, "blackhole")
        else:
            hold = rng.uniform(1, 3)
            self.say(f"fault: connections reset (reset_peer) for {hold:.1f}s")
            proxy.add_toxic(PROXY, "reset", "reset_peer", {"timeout": 0})
            await asyncio.sleep(hold)
            proxy.remove_toxic(PROXY, "reset")
        self.tally.faults[kind] += 1

    async def supervise(self) -> None:
        """Restart a member that should run but exited by itself (each exit is reported).

        A member that cannot reach the broker at startup exits; it is restarted 2 s later, as a
        process supervisor with a back-off would, so a broker restart is no crash loop.
        """
        exited: dict[str, float] = {}
        while True:
            for member in [*self.members, *([self.extra] if self.extra else [])]:
                if member.wanted and not member.running and member.process is not None:
                    now = time.monotonic()
                    if member.name not in exited:
                        exited[member.name] = now
                        reason = f"exit {member.process.returncode}: {member.last_error()}"
                        self.tally.unexpected_exits[reason] += 1
                        self.say(f"{member.name} exited by itself ({reason}); restart in 2s")
                        if sum(self.tally.unexpected_exits.values()) > 300:
                            raise RuntimeError("over 300 unexpected coordinator exits")
                    elif now - exited[member.name] >= 2.0:
                        del exited[member.name]
                        await member.start()
            await asyncio.sleep(0.5)  # a poll of child processes, bounded by the run's deadline

    # --- the run ---

    async def run(self) -> dict[str, Any]:
        size, work = self.size, self.work
        self.say(f"chaos {size.name}, seed {self.seed}, work dir {work}")
        self.infra = infra = await asyncio.to_thread(Infrastructure, work)
        try:
            await asyncio.to_thread(infra.broker.start)
        except BaseException:
            await asyncio.to_thread(infra.close)
            raise
        self.say(f"broker {infra.direct}, coordinators through toxiproxy at {infra.proxied}")
        topics = TopicNames(prefix=f"chaos{uuid.uuid4().hex[:6]}.")
        await create_topics(infra.direct, topics, size.partitions)
        spec = work / "chaos.yaml"
        spec.write_text(SPEC)
        group = f"{topics.prefix}coordinator"

        def new_member(name: str) -> Member:
            return Member(name, spec, infra.proxied, topics, group=group, log_dir=work)

        self.members = [new_member(f"m{i}") for i in range(size.members)]
        self.extra = new_member("x")
        for member in self.members:
            await member.start()
        load = Load(infra.direct, topics)
        await load.start()
        executor = asyncio.create_task(load.answer_triggers())
        supervisor = asyncio.create_task(self.supervise())
        emitter = asyncio.create_task(load.emit_ticks(size.runs, size.load_seconds))
        outcome: dict[str, Any] = {}
        try:
            await self.break_things()
            self.say(f"chaos done; load {load.emitted}/{size.runs} emitted")
            for member in self.members:
                if not member.wanted:
                    await member.start()
                await member.joined()  # so that the final SIGTERM finds it serving
            await asyncio.wait_for(emitter, size.load_seconds + 120)
            settled = await self.settle(infra.direct, topics)
            exits = {m.name: await m.stop() for m in self.members}
            self.say(f"members stopped: exit codes {exits}")
            outcome = await self.check(infra.direct, topics, settled)
            outcome["exit_codes"] = exits
            outcome["send_retries"] = load.send_retries
        finally:
            for task in (supervisor, executor, emitter):
                task.cancel()
            await asyncio.gather(supervisor, executor, emitter, return_exceptions=True)
            for member in [*self.members, self.extra]:
                await member.kill()
            await load.stop()
            await asyncio.to_thread(infra.close)
        return outcome

    async def break_things(self) -> None:
        """The plan, action after action at random moments, within the chaos phase's bound."""
        size, infra, extra = self.size, self.infra, self.extra
        assert infra is not None
        assert extra is not None
        actions = plan(size, self.rng)
        self.say(f"plan: {len(actions)} actions {dict(Counter(actions))}")
        busy = sum(_COST[a] for a in actions)
        mean_gap = max(0.5, (size.load_seconds - busy) / len(actions))
        chaos_deadline = self.started + size.deadline_s * 0.6
        for action in actions:
            if time.monotonic() > chaos_deadline:
                self.say("chaos phase over its time bound: remaining actions skipped")
                break
            await asyncio.sleep(self.rng.uniform(0.3, 1.7) * mean_gap)  # a random moment
            await self.act(action)
        infra.toxiproxy.reset()
        if extra.wanted:
            await extra.stop()
            self.tally.rebalances += 1

    async def settle(self, bootstrap: str, topics: TopicNames) -> float:
        """Wait (bounded) until every run has succeeded; the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < self.size.settle_seconds:
            statuses = await run_statuses(bootstrap, topics)
            done = sum(status == "succeeded" for status in statuses.values())
            if done >= self.size.runs:
                break
            await asyncio.sleep(3)  # re-read the runs topic: bounded by settle_seconds
        elapsed = time.monotonic() - started
        self.say(f"settled in {elapsed:.1f}s")
        return elapsed

    async def check(self, bootstrap: str, topics: TopicNames, settled: float) -> dict[str, Any]:
        runs = [f"{PIPELINE}/{n}" for n in range(self.size.runs)]
        seen = await triggers(bootstrap, topics)
        by_key = Counter(t.data.idempotency_key for t in seen)
        by_stage = Counter((t.data.run_id, t.data.stage) for t in seen)
        expected = {(run, stage) for run in runs for stage in STAGES}
        duplicates = sum(count - 1 for count in by_stage.values() if count > 1)
        duplicate_keys = sum(count - 1 for count in by_key.values() if count > 1)
        missing = sorted(expected - set(by_stage))
        unexpected = sorted(set(by_stage) - expected)
        statuses = await run_statuses(bootstrap, topics)
        unfinished = sorted(run for run in runs if statuses.get(run) != "succeeded")
        catalog = catalog_of(SPEC)
        mismatches = await replay_mismatches(bootstrap, topics, catalog, self.size.partitions)
        return {
            "triggers": len(seen), "expected_triggers": len(expected),
            "duplicates": duplicates, "duplicate_keys": duplicate_keys,
            "missing": len(missing), "missing_first": [list(m) for m in missing[:10]],
            "unexpected_triggers": [list(u) for u in unexpected[:10]],
            "runs_succeeded": self.size.runs - len(unfinished), "unfinished_first": unfinished[:10],
            "changelog_equals_replay": not mismatches, "replay_mismatches": mismatches,
            "settle_s": round(settled, 1),
        }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small smoke run (70-100 s)")
    parser.add_argument("--seed", type=int, default=None, help="the RNG seed (default: random)")
    parser.add_argument("--work-dir", type=Path, default=None, help="logs and broker data here")
    parser.add_argument("--keep", action="store_true", help="keep the broker data afterwards")
    args = parser.parse_args(argv)
    size = QUICK if args.quick else FULL
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="streamcoord-chaos-"))
    work.mkdir(parents=True, exist_ok=True)
    # The load's Kafka clients complain loudly while the broker is down: to a file, not the table.
    handler = logging.FileHandler(work / "load.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.getLogger("aiokafka").addHandler(handler)
    logging.getLogger("aiokafka").propagate = False
    chaos = Chaos(size, seed, work)
    started = time.monotonic()
    outcome = asyncio.run(chaos.run())
    tally = chaos.tally
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()}, Python {platform.python_version()}",
        "command": f"python -m chaos{' --quick' if args.quick else ''} --seed {seed}",
        "size": asdict(size), "seed": seed, "work_dir": str(work),
        "kills": tally.kills, "kills_serving": tally.kills_serving,
        "broker_restarts": tally.broker_restarts,
        "broker_down_s": tally.broker_down_s, "rebalances": tally.rebalances,
        "faults": dict(tally.faults), "faults_total": sum(tally.faults.values()),
        "unexpected_exits": dict(tally.unexpected_exits), "runs": size.runs, **outcome,
        "seconds": round(time.monotonic() - started, 1),
    }  # fmt: skip
    result["passed"] = passed(result)
    RESULTS.mkdir(exist_ok=True)
    stem = "latest" if size.name == "full" else size.name
    (RESULTS / f"{stem}.actions.log").write_text("\n".join(tally.log) + "\n")
    (RESULTS / f"{stem}.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    (RESULTS / f"{stem}.md").write_text(markdown(result))
    print(table(result))
    print(f"written: {RESULTS / stem}.{{json,md}}; logs in {work}")
    if result["passed"] and not args.keep:
        shutil.rmtree(work / "kafka", ignore_errors=True)
    sys.exit(0 if result["passed"] else 1)


def passed(result: dict[str, Any]) -> bool:
    return bool(
        result.get("duplicates") == 0
        and result.get("duplicate_keys") == 0
        and result.get("missing") == 0
        and not result.get("unexpected_triggers")
        and result.get("runs_succeeded") == result["runs"]
        and result.get("changelog_equals_replay")
    )
