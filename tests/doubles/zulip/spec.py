"""Zulip's OpenAPI description (``shared/specs/zulip.yaml``) as the double checks against it:
loaded once per process, its known quirks patched in memory, and the helpers that check an
answer of the double and report what broke it."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import yaml
from jsonschema_path import SchemaPath
from openapi_core import Config, OpenAPI
from openapi_core.contrib.starlette.requests import StarletteOpenAPIRequest
from openapi_core.contrib.starlette.responses import StarletteOpenAPIResponse
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.validation.schemas import oas30_read_schema_validators_factory
from openapi_core.validation.schemas.exceptions import ValidateError
from starlette.responses import JSONResponse, Response

__all__ = [
    "FEATURE_LEVEL",
    "SPEC_PATH",
    "ZULIP_VERSION",
    "answer_errors",
    "zulip_openapi",
]

SPEC_PATH = Path(__file__).resolve().parents[4] / "shared" / "specs" / "zulip.yaml"
FEATURE_LEVEL = 339  # the spec's server: 10.0-dev, API_FEATURE_LEVEL 339
ZULIP_VERSION = "10.0-dev+git"

# Operations whose 400 is a ``oneOf`` of error shapes that differ only in their examples (most
# of them ``CodedError``), so every error body matches several branches and ``oneOf`` fails.
_ERRORS_MEANT_AS_ANY_OF = (
    ("/messages", "post"),
    ("/messages/{message_id}/reactions", "post"),
    ("/messages/{message_id}/reactions", "delete"),
)

# Answers a Zulip server gives on any endpoint, which the operations themselves do not list:
# a ``JsonableError`` is a 400 in the ``CodedError`` shape wherever it is raised (upload-file
# documents no 400, yet refuses an oversized file with one).
_UNDOCUMENTED_ANSWERS = {400: "CodedError", 401: "InvalidApiKeyError", 429: "RateLimitedError"}


@functools.cache
def zulip_openapi() -> OpenAPI:
    """The Zulip spec as openapi-core sees it, with its known quirks patched *in memory*.

    Parsing 1.2 MB of YAML takes about half a second, so it happens once per process. The
    file itself stays byte-for-byte the vendor's (see shared/specs/README.md).
    """
    if not SPEC_PATH.is_file():
        raise FileNotFoundError(f"Zulip spec not found at {SPEC_PATH} (shared/specs checkout?)")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's is 10x faster
    with SPEC_PATH.open(encoding="utf-8") as f:
        spec = yaml.load(f, Loader=loader)
    _patch_quirks(spec)
    # The spec is the vendor's and unmodified; checking it (1.5 s) on every run buys nothing.
    return OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))


def _patch_quirks(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    # Quirk 1: ``security`` names ``basicAuth`` but the scheme is declared ``BasicAuth``;
    # openapi-core would find no scheme and refuse every request. Alias the lower-case name.
    schemes.setdefault("basicAuth", copy.deepcopy(schemes["BasicAuth"]))
    # Quirk 2: ``RateLimitedError.retry-after`` is typed integer, yet Zulip (and the spec's own
    # example, 28.706807374954224) sends fractional seconds. Accept any number.
    rate_limited = spec["components"]["schemas"]["RateLimitedError"]["allOf"][1]
    rate_limited["properties"]["retry-after"]["type"] = "number"
    # Quirk 3: error ``oneOf``s whose branches overlap (see above). The intent is "any of
    # these": validate them as ``anyOf``.
    for path, method in _ERRORS_MEANT_AS_ANY_OF:
        bad_request = spec["paths"][path][method]["responses"]["400"]
        schema = bad_request["content"]["application/json"]["schema"]
        schema["anyOf"] = schema.pop("oneOf")


def answer_errors(checked: StarletteOpenAPIRequest, response: Response) -> list[Exception]:
    """What is wrong with an answer of the double: checked against the operation's documented
    responses, else against the shapes Zulip uses on every endpoint (400, 401, 429). Bare
    answers (5xx, non-JSON) carry nothing to check."""
    if response.status_code >= 500 or not isinstance(response, JSONResponse):
        return []
    answer = StarletteOpenAPIResponse(response)
    errors = list(zulip_openapi().unmarshal_response(checked, answer).errors)
    if len(errors) == 1 and isinstance(errors[0], ResponseNotFound):
        schema = _UNDOCUMENTED_ANSWERS.get(response.status_code)
        if schema is None:
            return [ValueError(f"status {response.status_code} is not in the spec")]
        return _schema_errors(schema, json.loads(response.body))
    return errors


def _schema_errors(name: str, value: Any) -> list[Exception]:
    component: SchemaPath = zulip_openapi().spec / "components" / "schemas" / name
    validator = oas30_read_schema_validators_factory.create(zulip_openapi().spec, component)
    try:
        validator.validate(value)
    except ValidateError as exc:
        return [exc]
    return []
