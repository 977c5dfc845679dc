"""Play a planned day against a running system: 911 centers post calls, agencies answer offers."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from services.audit.stories import CallStory, fold, received
from services.notify.rules import watch_rules
from shared.jurisdiction import Jurisdiction
from shared.kafka import client_options
from shared.settings import Settings
from shared.topics import agency_topic
from tools.psap import PsapClient, bearer
from tools.sim.scenario import Answer, Options, Plan, PlannedCall, agency_answer, as_eido, check_ins

# EIDO common disposition codes: settled by contact, referred, transport given, gone on arrival,
# evaluated with no treatment needed; now and then transported by law enforcement.
DISPOSITIONS = ("18", "15", "16", "14", "41", "18", "15", "41", "33")


@dataclass
class Tally:
    """What the simulator saw, from both ends."""

    counts: Counter[str] = field(default_factory=Counter)
    call_ids: list[str] = field(default_factory=list)
    # Each call's route as intake last answered it (a later version of a call may re-route it).
    routes: dict[str, str] = field(default_factory=dict)
    # The calls that reached a stage, as the agencies saw it: offered, accepted, on_scene, cleared.
    reached: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Each call's story as the PSAPs and agencies saw it, folded as audit folds the trail.
    stories: defaultdict[str, CallStory] = field(default_factory=lambda: defaultdict(CallStory))
    psap_of: dict[str, str] = field(default_factory=dict)
    # Simulated seconds per real second: what the real times the simulator measured stand for.
    speedup: float = 1.0

    def saw(self, call_id: str, kind: str, data: dict[str, Any]) -> None:
        """Fold one thing the simulator was told into its story of the call."""
        fold(self.stories[call_id], kind, data, datetime.now(UTC))

    def own(self) -> dict[str, CallStory]:
        """The stories of the calls this simulator posted and got a 202 for; the agency topics also
        carry calls others posted (the fault suite's race driver)."""
        return received(self.stories)


class Simulation:
    """One run: the plan, the system's addresses and tokens, and the clock."""

    def __init__(
        self, settings: Settings, j: Jurisdiction, plan: Plan, options: Options, speedup: float, seed: int
    ):
        self.settings = settings
        self.j = j
        self.plan = plan
        self.options = options
        self.speedup = speedup
        self.rng = random.Random(seed + 1)
        self.tally = Tally(speedup=speedup)
        self.agency_tokens = {a.id: a.token for a in j.agencies}
        # The system's timers run on its own clock: its check-in interval in simulated seconds.
        self.check_in_every_s = watch_rules(j).check_in_every_min * 60 * speedup
        self.tasks: set[asyncio.Task[None]] = set()
        self.seen: set[str] = set()
        self.start = 0.0

    def url(self, service: str) -> str:
        """Base URL of one service."""
        return f"http://{self.settings.http_host}:{self.settings.port_for(service)}"

    def _psap(self, http: httpx.AsyncClient, psap_id: str) -> PsapClient:
        """A PSAP's CAD: it signs every POST when its jurisdiction entry has a signing secret."""
        return PsapClient(http, self.url("intake"), next(p for p in self.j.psaps if p.id == psap_id))

    async def _send(self, request: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response | None:
        """Send as a CAD or an agency's software would: retry when the connection fails.

        A retried call carries the same external id, so intake answers with the call it already
        has rather than creating a second one.
        """
        for attempt in range(6):
            try:
                return await request()
            except httpx.TransportError:
                self.tally.counts["http_retries"] += 1
                await asyncio.sleep(0.5 * 2**attempt)
        self.tally.counts["http_gave_up"] += 1
        return None

    def _later(self, delay_sim_s: float, coro: Any) -> None:
        async def run() -> None:
            await asyncio.sleep(delay_sim_s / self.speedup)
            await coro

        task = asyncio.create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _count(self, ok_key: str, what: str, r: httpx.Response | None, expected: int = 200) -> bool:
        """Count an answer under `ok_key`, or under what went wrong; True when it succeeded."""
        if r is not None and r.status_code == expected:
            self.tally.counts[ok_key] += 1
            return True
        self.tally.counts[f"{what}_http_{r.status_code if r is not None else 'none'}"] += 1
        return False

    def _stamp(self) -> str:
        """The simulated wall clock, as an EIDO version timestamp."""
        return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")

    async def _post(
        self, http: httpx.AsyncClient, url: str, headers: dict[str, str], body: Any = None
    ) -> httpx.Response | None:
        """An agency's POST, retried as `_send` retries."""
        return await self._send(lambda: http.post(url, json=body, headers=headers))

    async def _post_call(self, http: httpx.AsyncClient, call: PlannedCall) -> None:
        psap = self._psap(http, call.psap)
        if call.eido:
            eido = as_eido(call, self._stamp())
            r = await self._send(lambda: psap.incident(eido))
        else:
            r = await self._send(lambda: psap.call(call.body))
        self.tally.counts["calls_sent"] += 1
        self.tally.counts["calls_sent_eido" if call.eido else "calls_sent_native"] += 1
        if r is None or r.status_code != 202:
            self.tally.counts[f"calls_http_{r.status_code if r else 'none'}"] += 1
            return
        answer = r.json()
        self.tally.counts["calls_accepted_202"] += 1
        self.tally.counts[f"route_{answer['decision']['route']}"] += 1
        self.tally.call_ids.append(answer["call_id"])
        self.tally.routes[answer["call_id"]] = answer["decision"]["route"]
        self.tally.psap_of[answer["call_id"]] = call.psap
        self.tally.saw(
            answer["call_id"],
            "calls.received.v1",
            {
                "decision": answer["decision"],
                "received_at": datetime.now(UTC).isoformat(),
            },
        )
        route = answer["decision"]["route"]
        if route == "review" and self.rng.random() < self.options.review_decided_share:
            decided = self.rng.choice(["community", "community", "police"])
            delay = self.rng.uniform(60, 900)
            self._later(
                delay, self._override(http, call.psap, answer["call_id"], decided, "dispatcher_judgement")
            )
        elif route == "community" and self.rng.random() < self.options.override_share:
            reason = self.rng.choice(["caller_declined", "safety_concern"])
            self._later(
                self.rng.uniform(5, 60), self._override(http, call.psap, answer["call_id"], "police", reason)
            )
        if call.cancel_after is not None:
            self._later(call.cancel_after, self._cancel(http, call.psap, answer["call_id"]))
        if call.update_after is not None:
            self._later(call.update_after, self._update(http, call))

    async def _update(self, http: httpx.AsyncClient, call: PlannedCall) -> None:
        """A newer EIDO version of the call: the caller now reports a weapon, or (as often) the
        call-taker adds a caution that raises no flag and a new callback number, for the team."""
        if self.rng.random() < 0.5:
            body = as_eido(call, self._stamp(), weapon="yes")
        else:
            body = as_eido(call, self._stamp(), callback_number="+15415550188", cautions=["dog on premises"])
            self.tally.counts["updates_sent_details"] += 1
        psap = self._psap(http, call.psap)
        r = await self._send(lambda: psap.incident(body))
        if self._count("updates_sent", "update", r, 202) and r is not None:
            answer = r.json()
            self.tally.routes[answer["call_id"]] = answer["decision"]["route"]
            if answer["outcome"] != "ignored_older":
                self.tally.saw(
                    answer["call_id"],
                    "calls.updated.v1",
                    {
                        "decision": answer["decision"],
                        "reason": "eido_update",
                    },
                )

    async def _override(
        self, http: httpx.AsyncClient, psap_id: str, call_id: str, route: str, reason: str
    ) -> None:
        """A call-taker decides a call differently from triage, with a reason code."""
        psap = self._psap(http, psap_id)
        r = await self._send(lambda: psap.override(call_id, route, reason))
        if self._count("overrides_sent", "override", r) and r is not None:
            answer = r.json()
            self.tally.routes[call_id] = route
            self.tally.saw(
                call_id,
                "calls.updated.v1",
                {
                    "decision": {"route": route},
                    "reason": "override",
                    "previous_route": answer["recommended"]["route"],
                    "override_reason_code": reason,
                },
            )

    async def _cancel(self, http: httpx.AsyncClient, psap_id: str, call_id: str) -> None:
        psap = self._psap(http, psap_id)
        r = await self._send(lambda: psap.cancel(call_id, "caller called back"))
        if self._count("cancels_sent", "cancel", r, 202):
            self.tally.saw(call_id, "calls.cancelled.v1", {})

    def _answer(self, http: httpx.AsyncClient, agency: str, assignment: str, call_id: str) -> None:
        """Draw the agency's answer to an offer and give it after its delay (or never)."""
        answer = agency_answer(self.rng, self.options)
        if answer.choice == "ignore":
            self.tally.counts["offers_ignored"] += 1
            return
        self._later(answer.after_s, self._respond(http, agency, assignment, call_id, answer))

    async def _respond(
        self, http: httpx.AsyncClient, agency: str, assignment: str, call_id: str, answer: Answer
    ) -> None:
        headers = bearer(self.agency_tokens[agency])
        base = f"{self.url('notify')}/v1/assignments/{assignment}"
        if answer.choice == "decline":
            reason = {"reason_code": answer.reason_code}
            self._count(
                "offers_declined", "decline", await self._post(http, f"{base}/decline", headers, reason)
            )
            return
        if not self._count("offers_accepted", "accept", await self._post(http, f"{base}/accept", headers)):
            return
        self.tally.reached["accepted"].add(call_id)
        self.tally.saw(
            call_id,
            "assignments.responded.v1",
            {"assignment_id": assignment, "agency_id": agency, "response": "accepted"},
        )
        o = self.options
        en_route = self.rng.uniform(*o.en_route_s)
        on_scene = en_route + self.rng.uniform(*o.on_scene_s)
        cleared = on_scene + self.rng.uniform(*o.cleared_s)
        disposition = self.rng.choice(DISPOSITIONS)
        steps: list[tuple[float, dict[str, str]]] = [
            (en_route, {"status": "en_route"}),
            (on_scene, {"status": "on_scene"}),
            (cleared, {"status": "cleared", "disposition": disposition}),
        ]
        if self.rng.random() < o.backup_share:
            steps.append(((on_scene + cleared) / 2, {"status": "backup_requested"}))
        for delay, body in sorted(steps, key=lambda step: step[0]):
            self._later(delay, self._status(http, base, headers, body, call_id))
        lapse = self.rng.random() < o.check_in_lapse_share
        self.tally.counts["check_ins_lapsing"] += lapse
        for delay in check_ins(on_scene, cleared, self.check_in_every_s, lapse):
            self._later(delay, self._check_in(http, base, headers))

    async def _check_in(self, http: httpx.AsyncClient, base: str, headers: dict[str, str]) -> None:
        """A team on scene checks in (one cleared or withdrawn meanwhile is answered 409)."""
        self._count("check_ins", "check_in", await self._post(http, f"{base}/check-in", headers, {}))

    async def _status(
        self, http: httpx.AsyncClient, base: str, headers: dict[str, str], body: dict[str, str], call_id: str
    ) -> None:
        r = await self._post(http, f"{base}/status", headers, body)
        if self._count(f"status_{body['status']}", "status", r):
            self.tally.reached[body["status"]].add(call_id)
            self.tally.saw(call_id, "assignments.status_changed.v1", body)

    async def _agencies(
        self, http: httpx.AsyncClient, consumer: AIOKafkaConsumer, stop: asyncio.Event
    ) -> None:
        agency_of = {self.settings.topic(agency_topic(a.id)): a.id for a in self.j.agencies}
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    message = json.loads(record.value)["data"]
                    self.tally.counts[f"agency_{message['kind']}"] += 1
                    if message["kind"] == "timer_missed":
                        # A timer the team let run out, as its agency was paged again about it.
                        missed = {"timer": message["timer"], "escalation": "agency_repaged"}
                        missed["agency_id"] = agency_of[record.topic]
                        self.tally.saw(record.key.decode(), "assignments.timer_missed.v1", missed)
                    if message["kind"] == "offered" and message["assignment_id"] not in self.seen:
                        # A re-page repeats an offer: an agency's software answers each offer once.
                        self.seen.add(message["assignment_id"])
                        agency = agency_of[record.topic]
                        call_id = record.key.decode()
                        self.tally.reached["offered"].add(call_id)
                        self.tally.saw(
                            call_id,
                            "assignments.offered.v1",
                            {"assignment_id": message["assignment_id"], "agency_id": agency},
                        )
                        self._answer(http, agency, message["assignment_id"], call_id)

    async def run(self, drain_s: float, show_progress: bool = True) -> Tally:
        """Send every planned call on its schedule, answer every offer, then wait for the tail."""
        consumer = AIOKafkaConsumer(
            *[self.settings.topic(agency_topic(a.id)) for a in self.j.agencies],
            **client_options(self.settings),
            group_id=f"simulated-agencies-{random.getrandbits(32):08x}",
            auto_offset_reset="latest",
            fetch_max_wait_ms=50,
        )
        await consumer.start()
        await asyncio.sleep(3)  # join the group before the first offer, so "latest" misses nothing
        stop = asyncio.Event()
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(timeout=30, limits=limits) as http:
            follower = asyncio.create_task(self._agencies(http, consumer, stop))
            horizon = self.options.hours * 3600
            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
            )
            with Progress(*columns, disable=not show_progress) as progress:
                bar = progress.add_task("simulated day", total=horizon, info="")
                self.start = time.monotonic()
                self.tally.started_at = datetime.now(UTC)
                for call in self.plan.calls:
                    delay = self.start + call.at / self.speedup - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    task = asyncio.create_task(self._post_call(http, call))
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)
                    c = self.tally.counts
                    progress.update(
                        bar,
                        completed=call.at,
                        info=(
                            f"calls {c['calls_sent']}  community {c['route_community']}"
                            f"  offers {c['agency_offered']}  accepted {c['offers_accepted']}"
                            f"  cleared {c['status_cleared']}"
                        ),
                    )
                progress.update(bar, completed=horizon)
                deadline = time.monotonic() + drain_s
                # Pending answers and status reports schedule more of themselves; wait for them all.
                while self.tasks and (left := deadline - time.monotonic()) > 0:
                    await asyncio.wait(set(self.tasks), timeout=left)
            stop.set()
            await follower
            for task in list(self.tasks):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*self.tasks, return_exceptions=True)
        await consumer.stop()
        await self._hand_backs()
        return self.tally

    async def _hand_backs(self) -> None:
        """Read, as each PSAP, the calls no team cleared: a hand-back is told to the PSAP (its
        callback and its view of the call), not to any agency."""
        open_calls = [
            call_id
            for call_id, story in self.tally.own().items()
            if story.cleared_disposition is None and not story.cancelled
        ]
        async with httpx.AsyncClient(timeout=30) as http:
            for call_id in open_calls:
                psap = self._psap(http, self.tally.psap_of[call_id])
                r = await self._send(functools.partial(psap.status, call_id))
                if r is None or r.status_code != 200:
                    continue
                backs = [t for t in r.json()["timeline"] if t["status"] == "handed_back"]
                for entry in backs[-1:]:
                    reason = entry["detail"].get("reason_code") or ""
                    self.tally.saw(call_id, "calls.unassigned.v1", {"reason_code": reason})
