"""docs/operations.md lists every setting the hub reads, each with the default it really has."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic_settings import BaseSettings

from integrationhub.settings import Settings

OPERATIONS = Path(__file__).parents[2] / "docs" / "operations.md"


def every_setting(group: type[BaseSettings] = Settings) -> Iterator[tuple[str, Any]]:
    """Each setting's environment variable and default, the nested groups' included."""
    prefix = group.model_config.get("env_prefix", "")
    for name, field in group.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseSettings):
            yield from every_setting(kind)
            continue
        alias = field.validation_alias
        variable = alias if isinstance(alias, str) else f"{prefix}{name}".upper()
        yield variable, field.get_default(call_default_factory=True)


def documented() -> dict[str, str | None]:
    """The section "Every setting": each variable with what its brackets say, if any."""
    text = OPERATIONS.read_text().split("## Every setting", 1)[1].split("\n## ", 1)[0]
    return {
        name: " ".join(default.split()) if default is not None else None
        for name, default in re.findall(r"`([A-Z][A-Z0-9_]+)`(?:\s+\[([^\]]*)\])?", text)
    }


def first_word(text: str) -> str:
    return re.split(r"[\s:,;]", text, maxsplit=1)[0]


@pytest.mark.parametrize(("variable", "default"), list(every_setting()))
def test_every_setting_is_documented_with_its_default(variable, default):
    docs = documented()
    assert variable in docs, f"{variable} is missing from 'Every setting' in docs/operations.md"
    said = docs[variable]
    if default is None:
        return  # "none: ...", "SQLite in the data dir" or no brackets: what happens without it
    assert said is not None, f"{variable}: no [default] in docs/operations.md"
    if isinstance(default, bool):
        assert first_word(said) == str(default).lower(), (variable, said)
    elif isinstance(default, int | float):
        assert float(first_word(said)) == default, (variable, said)
    elif isinstance(default, str | Path):
        assert first_word(said).removeprefix("./") == str(default), (variable, said)
