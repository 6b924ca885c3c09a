"""Connector discovery through the ``integrationhub.connectors`` entry-point group.

Built-in connectors register the same way as separately installed ones, so a package that
declares ``[project.entry-points."integrationhub.connectors"] name = "pkg:Connector"`` is picked
up at start without any change to the hub.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Any

import structlog

from integrationhub.connectors.base import Action, BaseConnector, Credential, Source
from integrationhub.errors import ConfigurationError, CredentialInvalid, FlowInvalid

__all__ = ["ENTRY_POINT_GROUP", "Registry"]

ENTRY_POINT_GROUP = "integrationhub.connectors"
log = structlog.get_logger()


class Registry:
    """The connectors, actions, sources and credential types this hub knows."""

    def __init__(self, connectors: Iterable[type[BaseConnector[Any]]]) -> None:
        self.connectors: dict[str, type[BaseConnector[Any]]] = {}
        self.actions: dict[str, Action] = {}
        self.sources: dict[str, Source] = {}
        self.credential_types: dict[str, type[Credential]] = {}
        for connector in connectors:
            self._add(connector)

    @classmethod
    def from_entry_points(cls) -> Registry:
        loaded = []
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            connector = ep.load()
            if getattr(connector, "name", None) != ep.name:
                raise ConfigurationError(
                    f"entry point {ep.name!r} loads a connector named "
                    f"{getattr(connector, 'name', None)!r}; the two must match"
                )
            loaded.append(connector)
        log.debug("connectors.loaded", connectors=sorted(c.name for c in loaded))
        return cls(loaded)

    def _add(self, connector: type[BaseConnector[Any]]) -> None:
        if connector.name in self.connectors:
            raise ConfigurationError(f"two connectors are named {connector.name!r}")
        self.connectors[connector.name] = connector
        for name, act in connector.actions.items():
            if name in self.actions:
                raise ConfigurationError(
                    f"action {name!r} is declared by {self.actions[name].connector.name!r} "
                    f"and {connector.name!r}"
                )
            self.actions[name] = act
        for name, src in connector.sources.items():
            if name in self.sources:
                raise ConfigurationError(
                    f"source {name!r} is declared by {self.sources[name].connector.name!r} "
                    f"and {connector.name!r}"
                )
            self.sources[name] = src
        for credential_type in connector.credential_types:
            known = self.credential_types.setdefault(credential_type.type, credential_type)
            if known is not credential_type:
                raise ConfigurationError(
                    f"two credential types are named {credential_type.type!r}: "
                    f"{known.__module__}.{known.__name__} and "
                    f"{credential_type.__module__}.{credential_type.__name__}"
                )

    def action(self, name: str) -> Action:
        try:
            return self.actions[name]
        except KeyError:
            raise FlowInvalid(
                f"unknown action {name!r}; known actions: {', '.join(sorted(self.actions))}"
            ) from None

    def source(self, name: str) -> Source:
        try:
            return self.sources[name]
        except KeyError:
            known = ", ".join(sorted(self.sources)) or "none"
            raise ConfigurationError(f"unknown source {name!r}; known sources: {known}") from None

    def credential_type(self, type_name: str) -> type[Credential]:
        try:
            return self.credential_types[type_name]
        except KeyError:
            known = ", ".join(sorted(self.credential_types))
            raise CredentialInvalid(
                f"unknown credential type {type_name!r}; known types: {known}"
            ) from None

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "name": connector.name,
                "description": (connector.__doc__ or "").strip().splitlines()[0]
                if connector.__doc__
                else "",
                "credential_type": connector.credential_type.type
                if connector.credential_type
                else None,
                "credential_fields": _fields(connector.credential_type),
                "credential_types": [
                    {
                        "type": t.type,
                        "auth": t.auth.describe() if t.auth else None,
                        "fields": _fields(t),
                    }
                    for t in connector.credential_types
                ],
                "credential_optional": connector.credential_optional,
                "actions": [a.describe() for a in connector.actions.values()],
                "sources": [s.describe() for s in connector.sources.values()],
            }
            for connector in sorted(self.connectors.values(), key=lambda c: c.name)
        ]


def _fields(credential_type: type[Credential] | None) -> list[dict[str, Any]]:
    if credential_type is None:
        return []
    secret = set(credential_type.secret_fields())
    return [
        {"name": name, "secret": name in secret, "required": field.is_required()}
        for name, field in credential_type.model_fields.items()
    ]
