"""``zulip-reaction`` against the Zulip double, which checks every request and every answer
with Zulip's spec (operations ``add-reaction`` and ``remove-reaction``); the ``zulip`` fixture
fails a test on any violation."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from integrationhub.connectors.zulip import ZulipConnector, ZulipReactionSet
from integrationhub.connectors.zulip.answers import already_so
from integrationhub.errors import PermanentError
from tests.contract.zulip_support import *  # noqa: F403
from tests.contract.zulip_support import Invoke
from tests.doubles.zulip import Reaction, ZulipDouble

pytestmark = pytest.mark.contract

OLD_SERVER = 192  # Zulip 7.x: "already" answers carry no code of their own


def test_reacting_is_safe_to_repeat() -> None:
    assert ZulipConnector.actions["zulip-reaction"].safe_to_repeat


@pytest.fixture
def message_id(zulip: ZulipDouble) -> int:
    """A message in #general that the bot can see."""
    return int(zulip.push_message(content="deploy done", topic="ops")["id"])


async def test_reaction_by_name_arrives_as_the_spec_describes(
    zulip: ZulipDouble, invoke: Invoke, message_id: int
) -> None:
    result = await invoke("zulip-reaction", {"message_id": message_id, "emoji_name": ":tada:"})

    assert result == ZulipReactionSet(
        message_id=message_id, emoji_name="tada", present=True, changed=True
    )
    (request,) = zulip.requests
    assert (request.method, request.path, request.user) == (
        "POST",
        f"/api/v1/messages/{message_id}/reactions",
        zulip.email,
    )
    assert request.form == {"emoji_name": "tada"}
    assert zulip.reactions == [
        Reaction(message_id, zulip.user_id, "tada", "1f389", "unicode_emoji")
    ]


async def test_reaction_with_code_and_type_sends_them(
    zulip: ZulipDouble, invoke: Invoke, message_id: int
) -> None:
    params = {
        "message_id": message_id,
        "emoji_name": "zulip",
        "emoji_code": "zulip",
        "reaction_type": "zulip_extra_emoji",
    }

    await invoke("zulip-reaction", params)

    assert zulip.requests[0].form == {k: str(v) for k, v in params.items() if k != "message_id"}
    assert [r.reaction_type for r in zulip.reactions] == ["zulip_extra_emoji"]


@pytest.mark.parametrize("feature_level", [339, OLD_SERVER], ids=["coded", "zulip-7"])
async def test_adding_a_reaction_that_exists_succeeds_unchanged(
    zulip: ZulipDouble, invoke: Invoke, message_id: int, feature_level: int
) -> None:
    zulip.feature_level = feature_level
    params = {"message_id": message_id, "emoji_name": "octopus"}

    first = await invoke("zulip-reaction", params)
    again = await invoke("zulip-reaction", params)

    assert (first.changed, again.changed) == (True, False)  # type: ignore[attr-defined]
    assert again.present  # type: ignore[attr-defined]
    assert [r.status for r in zulip.requests] == [200, 400]
    assert len(zulip.reactions) == 1


@pytest.mark.parametrize("feature_level", [339, OLD_SERVER], ids=["coded", "zulip-7"])
async def test_removing_a_reaction_deletes_it_and_again_succeeds_unchanged(
    zulip: ZulipDouble, invoke: Invoke, message_id: int, feature_level: int
) -> None:
    zulip.feature_level = feature_level
    await invoke("zulip-reaction", {"message_id": message_id, "emoji_name": "eyes"})
    remove = {"message_id": message_id, "emoji_name": "eyes", "remove": True}

    removed = await invoke("zulip-reaction", remove)
    again = await invoke("zulip-reaction", remove)

    assert (removed.present, removed.changed) == (False, True)  # type: ignore[attr-defined]
    assert (again.present, again.changed) == (False, False)  # type: ignore[attr-defined]
    deletes = [r for r in zulip.requests if r.method == "DELETE"]
    assert [r.form for r in deletes] == [{"emoji_name": "eyes"}] * 2
    assert [r.status for r in deletes] == [200, 400]
    assert zulip.reactions == []


@pytest.mark.parametrize(
    ("params", "zulip_says"),
    [
        pytest.param(
            {"message_id": 999_999, "emoji_name": "octopus"},
            "Zulip POST /messages/999999/reactions answered 400: Invalid message(s) (BAD_REQUEST)",
            id="unknown-message",
        ),
        pytest.param(
            {"emoji_name": "unicorn_with_hat"},
            "answered 400: Emoji 'unicorn_with_hat' does not exist (BAD_REQUEST)",
            id="unknown-emoji",
        ),
        pytest.param(
            {"emoji_name": "octopus", "emoji_code": "1f999", "reaction_type": "unicode_emoji"},
            "answered 400: Invalid emoji code. (BAD_REQUEST)",
            id="unknown-code",
        ),
        pytest.param(
            {"emoji_name": "octopus", "emoji_code": "1f389", "reaction_type": "unicode_emoji"},
            "answered 400: Invalid emoji name. (BAD_REQUEST)",
            id="name-and-code-disagree",
        ),
        pytest.param(
            {"message_id": 999_999, "emoji_name": "octopus", "remove": True},
            "Zulip DELETE /messages/999999/reactions answered 400: Invalid message(s)",
            id="remove-on-unknown-message",
        ),
    ],
)
async def test_refused_reaction_is_permanent_with_zulips_message(
    zulip: ZulipDouble, invoke: Invoke, message_id: int, params: dict[str, Any], zulip_says: str
) -> None:
    with pytest.raises(PermanentError) as caught:
        await invoke("zulip-reaction", {"message_id": message_id, **params})

    assert zulip_says in caught.value.message
    assert zulip.reactions == []


@pytest.mark.parametrize(
    ("params", "complaint"),
    [
        ({"message_id": 0, "emoji_name": "tada"}, "message_id: Input should be greater than 0"),
        ({"message_id": True, "emoji_name": "tada"}, "not a boolean"),
        ({"message_id": "12a", "emoji_name": "tada"}, "message_id: Input should be a valid"),
        ({"message_id": 1, "emoji_name": ""}, "emoji_name: String should have at least 1"),
        ({"message_id": 1, "emoji_name": "Tada"}, "emoji_name: String should match pattern"),
        ({"message_id": 1, "emoji_name": "tada\r\nX: 1"}, "emoji_name: String should match"),
        ({"message_id": 1, "emoji_name": "tada", "emoji_code": "1F389!"}, "emoji_code:"),
        ({"message_id": 1, "emoji_name": "tada", "reaction_type": "custom"}, "reaction_type:"),
        ({"message_id": 1, "emoji": "tada"}, "emoji_name: Field required"),
    ],
)
async def test_invalid_reaction_is_refused_before_any_request(
    zulip: ZulipDouble, invoke: Invoke, params: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(PermanentError, match="invalid input for zulip-reaction") as caught:
        await invoke("zulip-reaction", params)

    assert complaint in caught.value.message
    assert zulip.requests == []


def zulip_answer(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode())


EXISTS = {"code": "REACTION_ALREADY_EXISTS", "legacy_msg": "Reaction already exists."}


@pytest.mark.parametrize(
    ("response", "already"),
    [
        (
            zulip_answer(400, {"result": "error", "msg": "x", "code": "REACTION_ALREADY_EXISTS"}),
            True,
        ),
        (
            zulip_answer(
                400, {"result": "error", "msg": "Reaction already exists.", "code": "BAD_REQUEST"}
            ),
            True,
        ),
        (  # Zulip 7 speaking the bot's language: not recognisable
            zulip_answer(
                400,
                {"result": "error", "msg": "Reaktion existiert bereits.", "code": "BAD_REQUEST"},
            ),
            False,
        ),
        (
            zulip_answer(
                400, {"result": "error", "msg": "Reaction already exists.", "code": "OTHER"}
            ),
            False,
        ),
        (
            zulip_answer(429, {"result": "error", "msg": "", "code": "REACTION_ALREADY_EXISTS"}),
            False,
        ),
        (
            zulip_answer(502, {"result": "error", "msg": "", "code": "REACTION_ALREADY_EXISTS"}),
            False,
        ),
        (httpx.Response(400, content=b"<html>Reaction already exists.</html>"), False),
        (zulip_answer(200, {"result": "success", "msg": ""}), False),
    ],
)
def test_only_zulips_already_answer_counts_as_already(
    response: httpx.Response, already: bool
) -> None:
    assert already_so(response, **EXISTS) is already
