"""The topology: every topic has its producers and consumers, the services bind what it declares."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from services import builders, topology
from services.topology import TOPOLOGY
from shared import topics
from shared.consumer import BatchHandler, EventConsumer, Handler
from shared.runtime import Infra
from shared.settings import SERVICE_NAMES, Settings

ROOT = Path(__file__).parents[2]


def test_the_topology_declares_the_four_services() -> None:
    """Tried: the topology's services against the ones the runtime can start."""
    assert tuple(TOPOLOGY) == SERVICE_NAMES


def test_every_produced_topic_has_a_consumer_and_every_consumed_topic_a_producer() -> None:
    """Tried: each registered topic; agency and dead-letter topics are read outside, and say by whom."""
    produced = {t for node in TOPOLOGY.values() for t in node.produces}
    consumed = {t for node in TOPOLOGY.values() for t in node.consumes}
    assert produced <= set(topics.REGISTRY) and consumed <= set(topics.REGISTRY)
    for topic in topics.REGISTRY:
        assert topology.producers(topic), f"nobody produces {topic}"
        assert topology.consumers(topic), f"nobody consumes {topic}"
    assert any(node.produces_agency_topics for node in TOPOLOGY.values())
    assert set(topology.EXTERNAL_CONSUMERS) == {topology.AGENCY_TOPICS, topology.DEAD_LETTER_TOPICS}


def test_the_newcomers_question_has_one_answer() -> None:
    """Tried: who consumes assignments.responded.v1, and with which function."""
    assert topology.consumers(topics.ASSIGNMENTS_RESPONDED) == {
        "intake": "on_assignment_event",
        "matching": "on_responded",
        "audit": "on_any_event",
    }
    assert topology.producers(topics.ASSIGNMENTS_RESPONDED) == ["notify"]


@dataclass
class _Recording(Infra):
    """The runtime's resources, no connection behind them, keeping what each consumer was given."""

    bound: dict[str, Mapping[str, Handler]] = field(default_factory=dict)
    gathers: dict[str, int] = field(default_factory=dict)

    def consumer(
        self,
        schema: str,
        service: str,
        handlers: Mapping[str, Handler],
        batch_handler: BatchHandler | None = None,
        gather_ms: int = 0,
    ) -> EventConsumer:
        self.bound[service] = dict(handlers)
        self.gathers[service] = gather_ms
        return super().consumer(schema, service, handlers, batch_handler, gather_ms)


async def test_each_service_binds_exactly_the_handlers_the_topology_names() -> None:
    """Tried: every composition root built without a database or broker; its consumer's table is the
    topology's, topic for topic, each handler the function of that name where the topology says."""
    infra = _Recording(settings=Settings(), pool=cast(Any, None), producer=cast(Any, None))
    for name, build in builders(list(SERVICE_NAMES)).items():
        build(infra)
        node = TOPOLOGY[name]
        bound = {t: f"{h.__module__}.{h.__qualname__}" for t, h in infra.bound[name].items()}
        assert bound == {t: f"{node.handlers}.{h}" for t, h in node.consumes.items()}, name


async def test_only_audit_reads_in_gathered_fetches() -> None:
    """Tried: every composition root on default settings; the three services on a call's path read
    each record as it comes, audit (the trail, on no call's path) waits up to 500 ms to fill a fetch."""
    infra = _Recording(settings=Settings(), pool=cast(Any, None), producer=cast(Any, None))
    for build in builders(list(SERVICE_NAMES)).values():
        build(infra)
    assert infra.gathers == {"intake": 0, "matching": 0, "notify": 0, "audit": 500}


def test_every_event_topic_a_service_names_is_one_it_consumes_or_produces() -> None:
    """Tried: every `topics.X` constant named in each service's package against its declaration."""
    constants = {name: getattr(topics, name) for name in dir(topics) if name.isupper()}
    for service, node in TOPOLOGY.items():
        source = "".join(p.read_text() for p in (ROOT / "services" / service).rglob("*.py"))
        named = set(re.findall(r"topics\.([A-Z_]+)\b", source))
        used = {constants[n] for n in named if n in constants and constants[n] in topics.REGISTRY}
        declared = node.consumes.keys() | node.produces
        assert used <= declared, (service, used - declared)
        assert node.produces_agency_topics == ("agency_topic(" in source), service


def test_the_committed_topics_page_is_the_generated_one() -> None:
    """Tried: docs/topics.md against the table the topology generates."""
    assert (ROOT / "docs" / "topics.md").read_text() == topology.table(), (
        "docs/topics.md is stale: run `python -m services.topology > docs/topics.md`"
    )
