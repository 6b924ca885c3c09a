"""Summarise a py-spy profile (``--format raw --threads``: collapsed stacks, one line per
stack, its sample count last): where one thread's time goes, by library and by hub function.

``python -m bench.profile_summary bench/results/profile-e2e-c32.txt [--top 25]``
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

__all__ = ["summarise"]

# The innermost frame that matches decides a sample's library; first match wins.
LIBRARIES = [
    ("sqlite3 / aiosqlite (store)", ("aiosqlite", "sqlite3")),
    ("asyncpg (store)", ("asyncpg",)),
    ("SQLAlchemy (store)", ("sqlalchemy",)),
    ("structlog / logging", ("structlog", "/logging/", "core/logs.py")),
    ("pydantic", ("pydantic",)),
    ("html_to_text (html.parser)", ("html/parser", "_markupbase", "smtp/compose")),
    ("email composition (stdlib email)", ("/email/",)),
    ("aiosmtplib", ("aiosmtplib",)),
    ("pulsar client", ("pulsar",)),
    ("jinja2 (templates)", ("jinja2", "core/templates.py")),
    ("jsonschema", ("jsonschema", "referencing", "rpds")),
    ("prometheus_client", ("prometheus_client",)),
    ("hvac / requests (vault)", ("hvac", "requests", "urllib3")),
    ("httpx / httpcore", ("httpx", "httpcore")),
    ("FastAPI / Starlette", ("fastapi", "starlette")),
    ("uvicorn / h11 (HTTP server)", ("uvicorn", "h11")),
    ("json", ("/json/",)),
    ("uuid / datetime / random", ("uuid.py", "datetime", "random.py")),
    ("asyncio event loop", ("asyncio",)),
    ("integrationhub (own code)", ("integrationhub",)),
]
# Areas of the hub, inclusive: a sample counts for each area one of its frames belongs to.
AREAS = [
    ("run store: every core/store/ call", ("core/store/",)),
    ("  of which Flow.model_validate in claim (jsonschema check_schema)", ("_schema_is_valid",)),
    (
        "HTTP trigger request (api/, FastAPI, Starlette, uvicorn protocol)",
        ("integrationhub/api/", "fastapi/", "starlette/", "uvicorn/protocols", "h11/"),
    ),
    ("SMTP: compose the message (smtp _compose, stdlib email)", ("_compose",)),
    ("SMTP: the session (aiosmtplib)", ("aiosmtplib",)),
    ("Pulsar client calls", ("pulsar/",)),
    ("logging (structlog, stdlib logging)", ("structlog", "/logging/")),
    ("Prometheus metrics", ("prometheus_client",)),
]
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")


def _parse(path: Path) -> list[tuple[list[str], int]]:
    """Stacks with a thread as their first frame (``--threads`` profiles have one; others get
    a single ``all threads``)."""
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            frames = stack.split(";")
            if not frames[0].startswith("thread ("):
                frames.insert(0, "all threads")
            stacks.append((frames, int(count)))
    return stacks


def _library(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, needles in LIBRARIES:
            if any(needle in frame for needle in needles):
                return name
    return "other"


def _hub_functions(frames: list[str]) -> set[str]:
    found = set()
    for frame in frames:
        match = _FRAME.match(frame)
        if match and "integrationhub/" in match["file"]:
            module = match["file"].split("integrationhub/", 1)[1]
            found.add(f"{module}:{match['func']}")
    return found


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "lib/python3.11/", "integrationhub/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


def summarise(path: Path, *, top: int = 25) -> str:
    stacks = _parse(path)
    by_thread: Counter[str] = Counter()
    for frames, count in stacks:
        by_thread[frames[0]] += count
    total = sum(by_thread.values())
    lines = [f"{path.name}: {total} samples"]
    for thread, count in by_thread.most_common():
        lines.append(f"  {100 * count / total:5.1f}%  {thread}")
    busiest = by_thread.most_common(1)[0][0] if by_thread else ""
    own = [(frames, count) for frames, count in stacks if frames[0] == busiest]
    own_total = sum(count for _, count in own) or 1
    libraries: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for frames, count in own:
        libraries[_library(frames)] += count
        leaves[_short(frames[-1])] += count
        for function in _hub_functions(frames):
            functions[function] += count
    lines.append(f"\nbusiest thread ({busiest}), innermost library of each sample:")
    for name, count in libraries.most_common():
        lines.append(f"  {100 * count / own_total:5.1f}%  {name}")
    lines.append("\nbusiest thread, inclusive share by area of the hub:")
    for name, needles in AREAS:
        count = sum(c for frames, c in own if any(n in f for f in frames for n in needles))
        lines.append(f"  {100 * count / own_total:5.1f}%  {name}")
    lines.append(f"\nbusiest thread, self time by function (top {top}):")
    for name, count in leaves.most_common(top):
        lines.append(f"  {100 * count / own_total:5.1f}%  {name}")
    lines.append(f"\nbusiest thread, inclusive time of hub functions (top {top}):")
    for name, count in functions.most_common(top):
        lines.append(f"  {100 * count / own_total:5.1f}%  {name}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    for path in args.profiles:
        print(summarise(path, top=args.top))
        print()


if __name__ == "__main__":
    main()
