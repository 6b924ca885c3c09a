"""The inbound supervisor's pure parts: its backoff, and the check of configured sources."""

from __future__ import annotations

from typing import Any

import pytest

from integrationhub.connectors.pulsar import PulsarConnector
from integrationhub.connectors.registry import Registry
from integrationhub.connectors.zulip import ZulipConnector
from integrationhub.core.inbound import backoff, plan_sources
from integrationhub.errors import ConfigurationError
from integrationhub.settings import PulsarSettings, SourceConfig


@pytest.mark.parametrize(
    ("failures", "low", "high"),
    [(1, 0.5, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0), (6, 16.0, 32.0), (7, 30.0, 60.0)],
)
def test_backoff_doubles_from_initial_with_equal_jitter_up_to_the_maximum(failures, low, high):
    delays = [
        backoff(failures, initial=1.0, maximum=60.0, rng=lambda r=r: r) for r in (0.0, 0.5, 1.0)
    ]

    assert delays == [low, (low + high) / 2, high]


def test_backoff_stays_at_the_maximum_however_many_failures():
    assert backoff(10_000, initial=1.0, maximum=60.0, rng=lambda: 1.0) == 60.0
    assert backoff(10_000, initial=1.0, maximum=60.0, rng=lambda: 0.0) == 30.0


def test_backoff_waits_at_least_what_the_remote_side_asked():
    assert backoff(1, initial=1.0, maximum=60.0, retry_after=7.5, rng=lambda: 1.0) == 7.5
    assert backoff(8, initial=1.0, maximum=60.0, retry_after=7.5, rng=lambda: 1.0) == 60.0


def test_backoff_jitter_spreads_waits_between_half_and_all_of_the_bound():
    delays = {backoff(4, initial=0.5, maximum=60.0) for _ in range(200)}

    assert all(2.0 <= delay <= 4.0 for delay in delays)
    assert len(delays) > 100


ZULIP = {"id": "zulip-general", "source": "zulip-messages", "credential": "zulip-bot"}


def plan(*configs: dict[str, Any]) -> list[Any]:
    return plan_sources(
        [SourceConfig.model_validate(c) for c in configs],
        registry=Registry([ZulipConnector, PulsarConnector]),
        pulsar=PulsarSettings(tenant="acme", namespace="hub"),
    )


def test_a_valid_source_gets_its_default_topic_in_the_hubs_namespace():
    (planned,) = plan(ZULIP | {"options": {"narrow": [["channel", "general"]]}})

    assert planned.topic == "persistent://acme/hub/integrationhub.zulip.messages"
    assert planned.options.narrow == [("channel", "general")]


@pytest.mark.parametrize(
    ("configs", "message"),
    [
        pytest.param(
            [ZULIP | {"source": "zulip-mesages"}],
            "unknown source 'zulip-mesages'; known sources: zulip-messages",
            id="unknown-source",
        ),
        pytest.param(
            [ZULIP | {"options": {"narrow": [["channel"]]}}],
            "invalid options for zulip-messages: narrow.0.1: Field required",
            id="narrow-not-pairs",
        ),
        pytest.param(
            [ZULIP | {"options": {"narow": []}}],
            "narow: Extra inputs are not permitted",
            id="misspelt-option",
        ),
        pytest.param(
            [{k: v for k, v in ZULIP.items() if k != "credential"}],
            "zulip-messages needs a zulip credential; set its id in 'credential'",
            id="no-credential",
        ),
        pytest.param([ZULIP, ZULIP], "(id 'zulip-general'): the id is used twice", id="same-id"),
    ],
)
def test_invalid_source_config_is_a_configuration_error_naming_the_source(configs, message):
    with pytest.raises(ConfigurationError) as caught:
        plan(*configs)

    assert caught.value.message.startswith("invalid inbound sources: INTEGRATIONHUB_SOURCES[")
    assert message in caught.value.message
