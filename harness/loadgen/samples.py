"""The messages behind the failure counts: what a failed request said, scrubbed and bounded.

`EndpointResult.error_samples` keeps, per endpoint and failure kind, up to
`ERROR_SAMPLES` distinct messages, first seen first, each at most
`MAX_MESSAGE` characters: a report that says "12 http_503" can then say
*what* the 503s said. This module is the pure part (no Locust, no gevent, no
I/O), shared by the recorder (each process keeps at most `ERROR_SAMPLES` per
endpoint and kind in each one-second cell, so it holds no more than its cells
already do) and the master's aggregate (`FirstSeen`: the distinct earliest
ones across every process).

What a message is (`describe`): for an HTTP error the status, and the start of
the service's JSON error message when it sent one (`{"error": {"code",
"message"}}` is the service's shape, FastAPI's `{"detail": ...}` is
understood too), or the first line of a non-JSON body; for anything else (a
connection error, a timeout, a body check) the exception's own text.

Secrets never get in (`Scrubber`): the dataset's API keys when the plugin
knows them (the manifest's `api_key`s, any depth), and anything that looks
like a key whatever its source: a bearer token, an `xi-api-key` (ElevenLabs'
header) or `api_key=` style assignment, a `dk_`/`sk_` key, a URL's password,
and long random tokens (mixed case and digits, 24+ characters). Scrubbing
happens where the message is made, in the process that saw it, so a secret
never travels to the master, let alone into a file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from harness.model.result import ERROR_SAMPLES

MAX_MESSAGE = 200
"""Characters a sample keeps (the service's messages are one line; a stack trace is not)."""
MAX_JSON_BODY = 64 * 1024
"""Bodies larger than this are not parsed for their message (the first line is kept)."""
REDACTED = "[redacted]"

_PATTERNS = (
    # Authorization: Bearer <token>, "Bearer <token>" anywhere
    (re.compile(r"(?i)\b(bearer)(\s+|%20)[^\s'\",;]+"), r"\1 " + REDACTED),
    # xi-api-key: <key>, api_key=<key>, "token": "<key>", password=..., secret ...
    (re.compile(r"(?i)\b((?:xi[-_])?api[-_]?key|access[-_]?token|token|secret|password|passwd"
                r"|authorization)(['\"]?\s*[:=]\s*['\"]?)(?!\[redacted\]|bearer\b)"
                r"[^\s'\",;&)]+"),
     r"\1\2" + REDACTED),
    # an `xi-api-key <key>` header as some clients print it
    (re.compile(r"(?i)\b(xi[-_]api[-_]key)(\s+)(?!\[redacted\])[^\s'\",;&)]+"),
     r"\1\2" + REDACTED),
    # keys with a known prefix: the dataset's (dk_), ElevenLabs' (sk_)
    (re.compile(r"\b(?:dk|sk)_[A-Za-z0-9]{16,}\b"), REDACTED),
    # scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]+):[^\s@/]+@"), r"\1:" + REDACTED + "@"),
    # long random tokens: upper and lower case letters and digits, 24+ characters
    (re.compile(r"(?<![A-Za-z0-9_-])(?=[A-Za-z0-9_-]*[A-Z])(?=[A-Za-z0-9_-]*[a-z])"
                r"(?=[A-Za-z0-9_-]*[0-9])[A-Za-z0-9_-]{24,}(?![A-Za-z0-9_-])"), REDACTED),
)


class Scrubber:
    """Replaces secrets in a message: the known keys, then anything that looks like a key."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        keys = sorted({s for s in secrets if isinstance(s, str) and len(s) >= 4},
                      key=len, reverse=True)
        self._known = re.compile("|".join(map(re.escape, keys))) if keys else None

    def __call__(self, text: str) -> str:
        if self._known is not None:
            text = self._known.sub(REDACTED, text)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text


def manifest_keys(manifest: object) -> set[str]:
    """Every `api_key` value of a dataset manifest, at any depth (the users' keys)."""
    found: set[str] = set()
    stack = [manifest]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "api_key" and isinstance(value, str):
                    found.add(value)
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return found


def clip(text: str, limit: int = MAX_MESSAGE) -> str:
    """One line of at most `limit` characters (an ellipsis says it was cut)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _body_message(body: object) -> str | None:
    """The message of a JSON error body: the service's `error.message` (after its code),
    FastAPI's `detail`, or a top-level `message`."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict) and error.get("message") is not None:
        code = error.get("code")
        return f"{code}: {error['message']}" if code else str(error["message"])
    if isinstance(error, str):
        return error
    detail = body.get("detail")
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        return str(detail[0].get("msg", detail[0]))
    if body.get("message") is not None:
        return str(body["message"])
    return None


def http_message(status: int, text: str | None) -> str:
    """`HTTP <status> <what the body said>`: its JSON error code and message, or its first
    line (`HTTP 503 database_unavailable: timed out waiting for a database connection`)."""
    head = f"HTTP {status}"
    text = (text or "").strip()
    if not text:
        return head
    said = None
    if len(text) <= MAX_JSON_BODY and text[:1] in "{[":
        try:
            said = _body_message(json.loads(text))
        except ValueError:
            said = None
    if said is None:
        said = text.splitlines()[0]
    return f"{head} {said}" if said else head


def _response_text(response: object) -> str | None:
    try:
        text = getattr(response, "text", None)
    except Exception:  # noqa: BLE001 - an undecodable body: the status alone says enough
        return None
    return text if isinstance(text, str) else None


def describe(exc: BaseException, response: object = None, endpoint: str = "") -> str:
    """What a failed request said (unscrubbed, unclipped: `Scrubber` and `clip` follow).

    An HTTP error (a status >= 400 on the exception, as the scenarios' `UnexpectedStatus`
    has, or on the response) is its status and body's message; anything else is the
    exception's text without the endpoint it repeats (the sample is kept per endpoint)."""
    status = getattr(exc, "status", None)
    if not isinstance(status, int):
        status = getattr(response, "status_code", None)
    if isinstance(status, int) and status >= 400:
        return http_message(status, _response_text(response))
    text = str(exc) or type(exc).__name__
    if endpoint and text.startswith(endpoint + ": "):
        text = text[len(endpoint) + 2:]
    from_check = getattr(exc, "kind", None) is not None
    return text if from_check else f"{type(exc).__name__}: {text}"


def add_distinct(samples: list[str], message: str, limit: int = ERROR_SAMPLES) -> bool:
    """Append `message` unless it is held already or `samples` is full; whether it was."""
    if len(samples) >= limit or message in samples:
        return False
    samples.append(message)
    return True


class FirstSeen:
    """The master's samples of one endpoint and kind: the distinct `limit` seen first.

    Pieces arrive from several processes in any order; each message is ranked by the
    second of the window it was seen in, then its place in that process's cell (the order
    it was seen in there), then its text, so the result does not depend on which worker
    reported first. At most `limit` messages are held."""

    __slots__ = ("_held", "limit")

    def __init__(self, limit: int = ERROR_SAMPLES) -> None:
        self.limit = limit
        self._held: dict[str, tuple[int, int, str]] = {}  # message -> its rank

    def add(self, t: int, messages: Iterable[str]) -> None:
        """One process's messages of one window (second `t`), in the order it saw them."""
        for i, message in enumerate(messages):
            rank = (t, i, message)
            seen = self._held.get(message)
            if seen is not None:
                self._held[message] = min(seen, rank)
                continue
            self._held[message] = rank
            if len(self._held) > self.limit:
                del self._held[max(self._held, key=self._held.__getitem__)]

    def messages(self) -> list[str]:
        return sorted(self._held, key=self._held.__getitem__)
