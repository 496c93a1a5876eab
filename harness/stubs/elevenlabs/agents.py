"""Deterministic agent catalogue of the ElevenLabs stub, built from the dataset manifest.

The target service is seeded from the same manifest, so the stub must serve
exactly the agents the database references (``agents[].elevenlabs_agent_id``,
or ``users[].elevenlabs_agent_ids`` for older manifests). Every agent's
configuration is generated from a RNG seeded by its id, so two stub processes
(or a stub restarted mid-run) return byte-identical bodies, and a snapshot
stored by the service compares equal to a later live fetch.

The shapes follow the public ``GET /v1/convai/agents/{agent_id}``
(``GetAgentResponseModel``) and ``GET /v1/convai/agents``
(``GetAgentsPageResponseModel``) schemas, trimmed to the fields a dashboard
reads.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_LANGUAGES = ["en", "en", "en", "de", "es", "fr", "it", "pt", "pl", "nl"]
_LLMS = ["gpt-4o-mini", "gpt-4o", "gemini-2.0-flash", "claude-3-5-sonnet", "gpt-4.1-mini"]
_TTS_MODELS = ["eleven_turbo_v2", "eleven_turbo_v2_5", "eleven_flash_v2_5",
               "eleven_multilingual_v2"]
_ROLES = ["Sales Assistant", "Support Agent", "Appointment Setter", "Lead Qualifier",
          "Receptionist", "Collections Agent", "Survey Caller", "Onboarding Guide"]
_TONES = ["friendly", "concise", "formal", "upbeat", "patient", "empathetic"]
_TAGS = ["sales", "support", "outbound", "inbound", "priority", "beta", "emea", "us"]
_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _rng_for(agent_id: str) -> random.Random:
    digest = hashlib.sha256(agent_id.encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _voice_id(rng: random.Random) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(rng.choice(alphabet) for _ in range(20))


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def make_agent_id(seed: int, index: int) -> str:
    """An id in the real format (``agent_`` + 28 lowercase base32 chars)."""
    rng = random.Random(f"agent-id|{seed}|{index}")
    return "agent_" + "".join(rng.choice(_ID_ALPHABET) for _ in range(28))


@dataclass(frozen=True, slots=True)
class StubAgent:
    """One agent as the stub serves it."""

    agent_id: str
    name: str
    created_at_unix_secs: int
    config: dict[str, Any] = field(hash=False, compare=False)

    def summary(self) -> dict[str, Any]:
        """The item shape of the list endpoint (``AgentSummaryResponseModel``)."""
        return {
            "agent_id": self.agent_id,
            "name": self.name,
            "tags": self.config["tags"],
            "created_at_unix_secs": self.created_at_unix_secs,
            "access_info": self.config["access_info"],
            "last_call_time_unix_secs": None,
            "archived": False,
        }


def build_agent(agent_id: str, name: str | None = None, *,
                anchor: dt.date | None = None, status: str | None = None) -> StubAgent:
    """Generate one agent's full configuration, deterministically from its id."""
    rng = _rng_for(agent_id)
    anchor = anchor or dt.date(2026, 11, 29)
    anchor_ts = int(dt.datetime(anchor.year, anchor.month, anchor.day,
                                tzinfo=dt.UTC).timestamp())
    role = rng.choice(_ROLES)
    name = name or f"{role} {rng.randrange(1, 1000)}"
    created = anchor_ts - rng.randrange(30, 720) * 86400 - rng.randrange(86400)
    updated = min(anchor_ts, created + rng.randrange(0, 200) * 86400 + rng.randrange(86400))
    language = rng.choice(_LANGUAGES)
    tone = rng.choice(_TONES)
    tags = sorted(rng.sample(_TAGS, rng.randrange(0, 3)))
    if status and status != "active":
        tags.append(status)
    config: dict[str, Any] = {
        "agent_id": agent_id,
        "name": name,
        "conversation_config": {
            "agent": {
                "first_message": f"Hi, this is {name}. How can I help you today?",
                "language": language,
                "prompt": {
                    "prompt": (f"You are {name}, {_article(tone)} {tone} {role.lower()} for a "
                               "voice-agent "
                               "platform. Keep answers short and confirm next steps."),
                    "llm": rng.choice(_LLMS),
                    "temperature": round(rng.uniform(0.0, 1.0), 2),
                    "max_tokens": -1,
                },
            },
            "tts": {
                "model_id": rng.choice(_TTS_MODELS),
                "voice_id": _voice_id(rng),
                "stability": 0.5,
                "speed": 1.0,
                "similarity_boost": 0.8,
            },
            "conversation": {"max_duration_seconds": rng.choice([300, 600, 900])},
        },
        "metadata": {"created_at_unix_secs": created, "updated_at_unix_secs": updated},
        "tags": tags,
        "access_info": {"is_creator": True, "creator_name": "Harness",
                        "creator_email": "harness@example.invalid", "role": "admin"},
    }
    if rng.random() < 0.7:
        config["platform_settings"] = {
            "call_limits": {"agent_concurrency_limit": rng.choice([-1, 5, 10]),
                            "daily_limit": rng.choice([100, 1000, 100000])},
            "privacy": {"record_voice": rng.random() < 0.8, "retention_days": -1},
        }
    return StubAgent(agent_id=agent_id, name=name, created_at_unix_secs=created,
                     config=config)


class AgentCatalog:
    """All agents of a manifest, in list order (newest first, as upstream sorts)."""

    def __init__(self, agents: list[StubAgent]) -> None:
        self._by_id = {a.agent_id: a for a in agents}
        self._ordered = sorted(self._by_id.values(),
                               key=lambda a: (-a.created_at_unix_secs, a.agent_id))

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, agent_id: str) -> StubAgent | None:
        return self._by_id.get(agent_id)

    def page(self, *, page_size: int, cursor: str | None,
             search: str | None) -> dict[str, Any]:
        """One page of the list endpoint; the cursor is an opaque offset token."""
        items = self._ordered
        if search:
            needle = search.casefold()
            items = [a for a in items if needle in a.name.casefold()]
        start = decode_cursor(cursor) if cursor else 0
        chunk = items[start:start + page_size]
        end = start + len(chunk)
        has_more = end < len(items)
        return {
            "agents": [a.summary() for a in chunk],
            "next_cursor": encode_cursor(end) if has_more else None,
            "has_more": has_more,
        }

    @classmethod
    def from_manifest(cls, path: str | Path) -> AgentCatalog:
        return cls.from_manifest_data(json.loads(Path(path).read_text()))

    @classmethod
    def from_manifest_data(cls, data: dict[str, Any]) -> AgentCatalog:
        anchor = None
        if data.get("anchor_date"):
            anchor = dt.date.fromisoformat(data["anchor_date"])
        agents: list[StubAgent] = []
        if data.get("agents"):
            for item in data["agents"]:
                el_id = item.get("elevenlabs_agent_id")
                if el_id:
                    agents.append(build_agent(el_id, item.get("name"), anchor=anchor,
                                              status=item.get("status")))
        else:
            seen: set[str] = set()
            for user in data.get("users", []):
                for el_id in user.get("elevenlabs_agent_ids", []):
                    if el_id not in seen:
                        seen.add(el_id)
                        agents.append(build_agent(el_id, anchor=anchor))
        return cls(agents)


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """Raises ``ValueError`` for a cursor this stub did not issue."""
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        text = base64.urlsafe_b64decode(padded.encode()).decode()
    except Exception as exc:  # binascii.Error, UnicodeDecodeError
        raise ValueError("invalid cursor") from exc
    if not text.startswith("o:") or not text[2:].isdigit():
        raise ValueError("invalid cursor")
    return int(text[2:])
