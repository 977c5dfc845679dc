"""Settings: the fetch wait follows the broker, child processes get the same connection, and
matching reads its own."""

from __future__ import annotations

import pytest

from shared.settings import Settings


@pytest.mark.parametrize(
    ("broker", "wait_ms"),
    [("apache", 500), ("external", 500), ("tansu", 20)],
)
def test_fetch_wait_follows_the_broker(broker: str, wait_ms: int) -> None:
    # Kafka answers a waiting fetch when a record arrives; Tansu only when the wait ends.
    assert Settings(kafka_broker=broker).fetch_max_wait_ms() == wait_ms


def test_an_explicit_fetch_wait_wins_and_reaches_child_processes() -> None:
    settings = Settings(kafka_broker="apache", kafka_fetch_max_wait_ms=35)
    assert settings.fetch_max_wait_ms() == 35
    assert settings.process_env()["KAFKA_FETCH_MAX_WAIT_MS"] == "35"


def test_a_child_process_reads_back_the_same_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    parent = Settings(
        database_url="postgresql://u@127.0.0.1:5999/x",
        kafka_bootstrap_servers="127.0.0.1:1234",
        kafka_broker="tansu",
        kafka_namespace="ns.",
    )
    for name, value in parent.process_env().items():
        monkeypatch.setenv(name, value)
    child = Settings()
    assert child.database_url == parent.database_url
    assert (child.kafka_bootstrap_servers, child.kafka_broker, child.kafka_namespace) == (
        "127.0.0.1:1234",
        "tansu",
        "ns.",
    )
    assert child.fetch_max_wait_ms() == 20


def test_matchings_offer_deadline_and_speed_keep_their_variable_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tried: MATCHING_OFFER_TIMEOUT_S and MATCHING_SPEED_KMH set; matching's own settings read them."""
    from services.matching.settings import MatchingSettings

    monkeypatch.setenv("MATCHING_OFFER_TIMEOUT_S", "7")
    monkeypatch.setenv("MATCHING_SPEED_KMH", "55.5")
    own = MatchingSettings()
    assert (own.offer_timeout_s, own.speed_kmh) == (7, 55.5)
