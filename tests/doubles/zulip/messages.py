"""The double's message operations: ``send-message``, ``register-queue``, ``get-events``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from tests.doubles.zulip.records import Call
from tests.doubles.zulip.shapes import zulip_error, zulip_message, zulip_success
from tests.doubles.zulip.spec import ZULIP_VERSION

if TYPE_CHECKING:
    from tests.doubles.zulip.double import ZulipDouble

__all__ = ["MAX_MESSAGE_LENGTH", "get_events", "register_queue", "send_message"]

MAX_MESSAGE_LENGTH = 10_000


async def send_message(zulip: ZulipDouble, call: Call) -> Response:
    params = call.params
    # Zulip strips trailing whitespace, refuses an empty body and truncates a long one.
    content = params["content"].rstrip().lstrip("\n")
    if not content:
        return zulip_error(400, "Message must not be empty")
    if len(content) > MAX_MESSAGE_LENGTH:
        note = "\n[message truncated]"
        content = content[: MAX_MESSAGE_LENGTH - len(note)] + note
    message_id = zulip.next_message_id()
    common = {
        "message_id": message_id,
        "sender_id": zulip.user_id,
        "sender_email": zulip.email,
        "content": content,
    }
    to = params["to"]
    if params["type"] in ("stream", "channel"):
        if isinstance(to, list) and len(to) == 1:  # a legacy form Zulip still takes
            to = to[0]
        if isinstance(to, int):
            names = {sid: name for name, sid in zulip.streams.items()}
            if to not in names:
                # Zulip adds ``stream_id`` here, but send-message's 400 in the spec has no
                # shape with it (only ``NonExistingChannelNameError``): leave it out.
                return zulip_error(
                    400, f"Channel with ID '{to}' does not exist", "STREAM_DOES_NOT_EXIST"
                )
            stream = (to, names[to])
        else:
            if not isinstance(to, str) or to not in zulip.streams:
                return zulip_error(
                    400, f"Channel '{to}' does not exist", "STREAM_DOES_NOT_EXIST", stream=str(to)
                )
            stream = (zulip.streams[to], to)
        if "topic" not in params:
            return zulip_error(400, "Missing topic")
        message = zulip_message(**common, stream=stream, topic=params["topic"].strip())
    else:
        recipients = to if isinstance(to, list) else [to]
        emails = {uid: email for email, uid in zulip.users.items()}
        found = []
        for recipient in recipients:
            if isinstance(recipient, int) and recipient in emails:
                found.append((recipient, emails[recipient]))
            elif isinstance(recipient, str) and recipient in zulip.users:
                found.append((zulip.users[recipient], recipient))
            elif isinstance(recipient, int):
                return zulip_error(400, f"Invalid user ID {recipient}")
            else:
                return zulip_error(400, f"Invalid email '{recipient}'")
        message = zulip_message(**common, recipients=found)
    zulip.messages.append(message)
    zulip.remember(message)
    zulip.push_event({"type": "message", "message": message, "flags": ["read"]})
    return zulip_success(id=message_id)


async def register_queue(zulip: ZulipDouble, call: Call) -> Response:
    queue_id = zulip.queues.register(call.params.get("event_types"))
    return zulip_success(
        queue_id=queue_id,
        last_event_id=-1,
        zulip_feature_level=zulip.feature_level,
        zulip_version=ZULIP_VERSION,
        zulip_merge_base=ZULIP_VERSION,
        max_message_length=MAX_MESSAGE_LENGTH,
        max_topic_length=60,
        max_stream_name_length=60,
        max_file_upload_size_mib=zulip.max_upload_mib,
    )


async def get_events(zulip: ZulipDouble, call: Call) -> Response:
    params: dict[str, Any] = call.params
    queue_id: str = params["queue_id"]
    events = await zulip.queues.events(
        queue_id,
        last_event_id=params.get("last_event_id", -1),
        dont_block=params.get("dont_block", False),
        timeout=zulip.longpoll_timeout,
    )
    if events is None:
        return zulip_error(
            400, f"Bad event queue ID: {queue_id}", "BAD_EVENT_QUEUE_ID", queue_id=queue_id
        )
    return zulip_success(events=events)
