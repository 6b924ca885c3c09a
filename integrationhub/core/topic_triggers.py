"""Flows started by Pulsar messages: the shared trigger topic, and topics flows declare.

The shared topic takes the HTTP trigger's shape, ``{"flow_id", "parameters",
"idempotency_key"?}``. A flow may declare ``trigger: {pulsar: {topic, subscription?,
parameters?}}``; its messages' payloads become the parameters.

A message that can never become a run (not JSON, unknown flow, parameters failing the schema) is
dead-lettered with the reason; a transient failure (the run store is down) is redelivered with a
growing delay. Without an idempotency key of its own, a message's id and publish time are its
key, so a message redelivered after a crash between persisting and acknowledging never starts
a second run.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from integrationhub.core import templates
from integrationhub.core.bus import Bus, Message, Reject, Subscription
from integrationhub.core.catalog import Catalog
from integrationhub.core.periodic import Periodic
from integrationhub.core.triggers import Triggers
from integrationhub.errors import FlowError, IdempotencyConflict
from integrationhub.models.flow import FlowId, PulsarTrigger
from integrationhub.settings import Settings

__all__ = ["TopicTriggers"]

log = structlog.get_logger()


class TriggerMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flow_id: FlowId
    parameters: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(None, min_length=1, max_length=255)


def _json(message: Message) -> Any:
    try:
        return json.loads(message.payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Reject("payload is not JSON") from None


class TopicTriggers:
    def __init__(
        self, *, bus: Bus, triggers: Triggers, catalog: Catalog, settings: Settings
    ) -> None:
        self.bus = bus
        self.triggers = triggers
        self.catalog = catalog
        self.settings = settings
        self._shared: Subscription | None = None
        self._flows: dict[str, tuple[PulsarTrigger, Subscription]] = {}
        self._reconciler = Periodic(
            "topic_trigger.reconcile", max(settings.sweep_interval, 1.0) * 2, self.reconcile
        )

    async def start(self) -> None:
        pulsar = self.settings.pulsar
        self._shared = self.bus.subscribe(
            pulsar.topic(pulsar.triggers_topic),
            pulsar.triggers_subscription,
            self._on_trigger,
            concurrency=self.settings.worker_concurrency,
        )
        await self.reconcile()
        self._reconciler.start()

    async def stop(self) -> None:
        await self._reconciler.stop()
        for _, subscription in self._flows.values():
            await subscription.close()
        self._flows.clear()
        if self._shared is not None:
            await self._shared.close()

    async def reconcile(self) -> None:
        """Subscribe for each flow that declares a topic trigger, and only for those: flows
        change through the API, on this replica or another."""
        wanted = {
            flow.id: flow.trigger.pulsar
            for flow in await self.catalog.list()
            if flow.trigger is not None and flow.trigger.pulsar is not None
        }
        for flow_id, (trigger, subscription) in list(self._flows.items()):
            if wanted.get(flow_id) != trigger:
                await subscription.close()
                del self._flows[flow_id]
        for flow_id, trigger in wanted.items():
            if flow_id not in self._flows:
                self._flows[flow_id] = (trigger, self._subscribe(flow_id, trigger))
                log.info("topic_trigger.subscribed", flow_id=flow_id, topic=trigger.topic)

    def _subscribe(self, flow_id: str, trigger: PulsarTrigger) -> Subscription:
        async def handle(message: Message) -> None:
            await self._start_flow(flow_id, trigger, message)

        return self.bus.subscribe(
            self.settings.pulsar.topic(trigger.topic),
            trigger.subscription or f"integrationhub-flow-{flow_id}",
            handle,
            concurrency=self.settings.worker_concurrency,
        )

    async def _on_trigger(self, message: Message) -> None:
        try:
            request = TriggerMessage.model_validate(_json(message))
        except ValidationError as exc:
            raise Reject(f"not a trigger request: {_first_error(exc)}") from None
        await self._trigger(
            message,
            flow_id=request.flow_id,
            parameters=request.parameters,
            key=request.idempotency_key,
        )

    async def _start_flow(self, flow_id: str, trigger: PulsarTrigger, message: Message) -> None:
        payload = _json(message)
        if trigger.parameters is not None:
            context = {
                "message": payload,
                "key": message.key,
                "properties": dict(message.properties),
            }
            try:
                parameters = templates.render(trigger.parameters, context)
            except FlowError as exc:
                raise Reject(exc.message) from None
        else:
            parameters = payload
        if not isinstance(parameters, dict):
            raise Reject("parameters must be a JSON object")
        await self._trigger(message, flow_id=flow_id, parameters=parameters, key=None)

    async def _trigger(
        self, message: Message, *, flow_id: str, parameters: dict[str, Any], key: str | None
    ) -> None:
        try:
            await self.triggers.trigger(
                flow_id=flow_id,
                parameters=parameters,
                idempotency_key=key or _message_key(message),
                source="pulsar",
            )
        except (FlowError, IdempotencyConflict) as exc:
            raise Reject(exc.message) from None


def _message_key(message: Message) -> str:
    # The id alone could repeat on a broker whose ledgers start over; with the publish time
    # it names one message, and stays the same across redeliveries.
    return f"pulsar:{message.topic}:{message.message_id}:{message.published_at.isoformat()}"


def _first_error(exc: ValidationError) -> str:
    err = exc.errors(include_input=False)[0]
    return f"{'.'.join(str(p) for p in err['loc']) or 'message'}: {err['msg']}"
