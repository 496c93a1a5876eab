"""Deterministic, realistically skewed synthetic data for the dashboard.

Pure generation, no I/O: `generate(preset, seed, anchor)` yields rows that
`seed.py` streams into PostgreSQL with COPY. The same (preset, seed, anchor
date, GENERATOR_VERSION) always gives the same rows, so a baseline measured on
Monday is comparable with a run on Friday: the data is the same *relative to
its anchor day*, and the anchor is the day the dataset was built.

Realism that matters for performance (and so for the harness's honesty):
* users follow a Zipf-like law: the busiest user has ~10% of all calls, the
  median user a fraction of a percent; the manifest carries these weights so
  load scenarios pick users with the same skew;
* agents within a user are skewed the same way, and busier users have more;
* calls follow a weekly and an hourly rhythm and a mild growth trend;
* lead scores are spread over 0-100 (a beta distribution), so every quality
  bucket has data.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

GENERATOR_VERSION = 1


@dataclass(frozen=True)
class Preset:
    """A named dataset size."""

    name: str
    users: int
    calls: int
    leads: int
    days: int


PRESETS: dict[str, Preset] = {
    "tiny": Preset("tiny", users=12, calls=40_000, leads=6_000, days=120),
    "small": Preset("small", users=200, calls=250_000, leads=50_000, days=180),
    "medium": Preset("medium", users=1_000, calls=1_000_000, leads=200_000, days=365),
    "large": Preset("large", users=5_000, calls=10_000_000, leads=2_000_000, days=365),
}

AGENT_ROLES = ("Sales Assistant", "Appointment Setter", "Support Agent", "Lead Qualifier",
               "Receptionist", "Collections Agent", "Survey Caller", "Renewal Specialist")
LEAD_SOURCES = ("web_form", "referral", "ads", "cold_list", "inbound_call", "event")
LEAD_STATUSES = (("new", 30), ("contacted", 35), ("qualified", 18), ("converted", 7), ("lost", 10))
CALL_STATUSES = ("completed", "no_answer", "voicemail", "busy", "failed")
# calls per hour of day (UTC): a business-hours hump with a long evening tail
HOURLY = (2, 1, 1, 1, 1, 2, 4, 8, 14, 18, 20, 21, 20, 21, 22, 22, 20, 17, 13, 10, 8, 6, 4, 3)
WEEKDAY = (1.0, 1.05, 1.05, 1.0, 0.9, 0.4, 0.3)  # Monday .. Sunday


def api_key_for(seed: int, user_id: int) -> str:
    """The bearer key of a seeded user: derivable from the seed, never stored in clear."""
    digest = hmac.new(f"dataset-seed:{seed}".encode(), f"user:{user_id}".encode(),
                      hashlib.sha256).hexdigest()
    return f"dk_{digest[:40]}"


def hash_api_key(api_key: str) -> bytes:
    """What the users table stores and the auth lookup compares."""
    return hashlib.sha256(api_key.encode()).digest()


def elevenlabs_agent_id(seed: int, agent_id: int) -> str:
    """An ElevenLabs-style agent id (`agent_` + 28 base32 chars), stable per seed."""
    digest = hashlib.sha256(f"{seed}:agent:{agent_id}".encode()).digest()
    return "agent_" + base64.b32encode(digest).decode().lower()[:28]


def zipf_weights(n: int, s: float, rng: random.Random) -> list[float]:
    """Normalized Zipf weights in a shuffled order (rank is not the id)."""
    raw = [1.0 / (rank ** s) for rank in range(1, n + 1)]
    rng.shuffle(raw)
    total = sum(raw)
    return [w / total for w in raw]


@dataclass
class UserRow:
    id: int
    email: str
    name: str
    api_key: str
    weight: float
    agent_ids: list[int] = field(default_factory=list)
    agent_weights: list[float] = field(default_factory=list)
    lead_ids: list[int] = field(default_factory=list)
    lead_times: list[datetime] = field(default_factory=list)


@dataclass
class AgentRow:
    id: int
    user_id: int
    elevenlabs_agent_id: str
    name: str
    status: str
    completion_rate: float
    rate_per_minute: float
    created_at: datetime


class Generator:
    """Builds one dataset; iterate the row methods in order (users, agents, leads, calls)."""

    def __init__(self, preset: Preset, seed: int, anchor: date) -> None:
        self.preset = preset
        self.seed = seed
        self.anchor = datetime(anchor.year, anchor.month, anchor.day, tzinfo=UTC)
        self.start = self.anchor - timedelta(days=preset.days)
        self.rng = random.Random(f"{seed}:{GENERATOR_VERSION}:{preset.name}")
        self.users: list[UserRow] = []
        self.agents: list[AgentRow] = []
        self.lead_score: dict[int, int] = {}
        self.lead_calls: dict[int, list] = {}
        self._day_cum = self._day_weights()
        self._hour_cum = list(itertools.accumulate(HOURLY))
        self._build_users_and_agents()

    def _day_weights(self) -> list[float]:
        days = self.preset.days
        weights = []
        for d in range(days):
            day = self.start + timedelta(days=d)
            trend = 0.6 + 0.8 * d / max(days - 1, 1)  # the business grows
            weights.append(trend * WEEKDAY[day.weekday()])
        return list(itertools.accumulate(weights))

    def _build_users_and_agents(self) -> None:
        rng, preset = self.rng, self.preset
        weights = zipf_weights(preset.users, 1.0, rng)
        w_max = max(weights)
        agent_id = 0
        for i, w in enumerate(weights, start=1):
            user = UserRow(i, f"user{i}@example.com", f"Company {i:05d}", api_key_for(self.seed, i), w)
            n_agents = 1 + min(19, int(rng.expovariate(1 / 2.5) + 12 * math.sqrt(w / w_max)))
            user.agent_weights = zipf_weights(n_agents, 1.0, rng)
            for k in range(n_agents):
                agent_id += 1
                status = rng.choices(("active", "paused", "archived"), (80, 15, 5))[0]
                created = self.start - timedelta(days=rng.randint(1, 60), seconds=rng.randint(0, 86399))
                self.agents.append(AgentRow(
                    agent_id, i, elevenlabs_agent_id(self.seed, agent_id),
                    f"{AGENT_ROLES[(agent_id + k) % len(AGENT_ROLES)]} {agent_id}", status,
                    completion_rate=rng.uniform(0.45, 0.8),
                    rate_per_minute=rng.uniform(0.07, 0.12), created_at=created))
                user.agent_ids.append(agent_id)
            self.users.append(user)

    def _timestamp(self) -> datetime:
        rng = self.rng
        day = bisect.bisect_left(self._day_cum, rng.random() * self._day_cum[-1])
        hour = bisect.bisect_left(self._hour_cum, rng.random() * self._hour_cum[-1])
        return self.start + timedelta(days=day, hours=hour, seconds=rng.randrange(3600))

    def user_rows(self) -> Iterator[tuple]:
        for u in self.users:
            yield (u.id, u.email, u.name, hash_api_key(u.api_key), self.start - timedelta(days=90))

    def agent_rows(self) -> Iterator[tuple]:
        for a in self.agents:
            yield (a.id, a.user_id, a.elevenlabs_agent_id, a.name, a.status, a.created_at)

    def lead_rows(self) -> Iterator[tuple]:
        """Leads, and (as a side effect) each lead's score for `lead_analytics_rows`."""
        rng, preset = self.rng, self.preset
        lead_id = 0
        statuses, status_w = zip(*LEAD_STATUSES, strict=True)
        for u in self.users:
            n = max(3, round(preset.leads * u.weight))
            times = sorted(self._timestamp() for _ in range(n))
            for ts in times:
                lead_id += 1
                u.lead_ids.append(lead_id)
                u.lead_times.append(ts)
                self.lead_score[lead_id] = min(100, int(rng.betavariate(2.0, 2.4) * 101))
                yield (lead_id, u.id, f"Lead {lead_id}", f"+1555{lead_id:07d}",
                       rng.choice(LEAD_SOURCES), rng.choices(statuses, status_w)[0], ts)

    def call_rows(self) -> Iterator[tuple]:
        """Calls in id order per user; tracks per-lead call counts for lead analytics."""
        rng, preset = self.rng, self.preset
        agents = {a.id: a for a in self.agents}
        call_id = 0
        for u in self.users:
            n = max(5, round(preset.calls * u.weight))
            picked = rng.choices(u.agent_ids, u.agent_weights, k=n)
            for agent_id in picked:
                call_id += 1
                agent = agents[agent_id]
                ts = self._timestamp()
                if rng.random() < agent.completion_rate:
                    status = "completed"
                    duration = min(3600, int(rng.lognormvariate(math.log(150), 0.7)))
                else:
                    status = rng.choices(CALL_STATUSES[1:], (40, 25, 15, 20))[0]
                    duration = rng.randint(20, 60) if status == "voicemail" else rng.randint(0, 8)
                cents = round(duration / 60 * agent.rate_per_minute * 10_000)
                cost = Decimal(cents + (100 if status == "completed" else 0)).scaleb(-4)
                lead_id = None
                if u.lead_ids and rng.random() < 0.6:
                    upto = bisect.bisect_right(u.lead_times, ts)
                    if upto:
                        lead_id = u.lead_ids[rng.randrange(upto)]
                        seen = self.lead_calls.get(lead_id)
                        if seen is None:
                            self.lead_calls[lead_id] = [1, ts]
                        else:
                            seen[0] += 1
                            seen[1] = max(seen[1], ts)
                direction = "outbound" if rng.random() < 0.7 else "inbound"
                yield (call_id, u.id, agent_id, lead_id, status, direction, duration, cost, ts)

    def lead_analytics_rows(self) -> Iterator[tuple]:
        """One row per lead; call counts are exact only after `call_rows` was consumed."""
        for u in self.users:
            for lead_id in u.lead_ids:
                n, last = self.lead_calls.get(lead_id, (0, None))
                yield (lead_id, u.id, self.lead_score[lead_id], n, last, self.anchor)

    def snapshot_for(self, agent: AgentRow) -> dict | None:
        """The stored ElevenLabs configuration snapshot (most agents have one)."""
        if hashlib.sha256(agent.elevenlabs_agent_id.encode()).digest()[0] < 40:
            return None  # ~15% never synced: their fallback is "unavailable"
        return {
            "agent_id": agent.elevenlabs_agent_id,
            "name": agent.name,
            "conversation_config": {
                "agent": {"first_message": f"Hi, this is {agent.name.split()[0]}.",
                          "language": "en",
                          "prompt": {"prompt": "You are a helpful voice agent.",
                                     "llm": "gpt-4o-mini", "temperature": 0.5}},
                "tts": {"model_id": "eleven_turbo_v2", "voice_id": "21m00Tcm4TlvDq8ikWAM"},
            },
            "metadata": {"created_at_unix_secs": int(agent.created_at.timestamp()),
                         "updated_at_unix_secs": int(agent.created_at.timestamp())},
            "tags": [],
        }

    def manifest(self) -> dict:
        """The dataset manifest: who the users are, their keys and agents, their skew."""
        by_user: dict[int, list[AgentRow]] = {}
        for a in self.agents:
            by_user.setdefault(a.user_id, []).append(a)
        return {
            "preset": self.preset.name,
            "seed": self.seed,
            "generator_version": GENERATOR_VERSION,
            "anchor_date": self.anchor.date().isoformat(),
            "counts": {"users": len(self.users), "agents": len(self.agents)},
            "users": [
                {"user_id": u.id, "api_key": u.api_key, "agent_ids": u.agent_ids,
                 "elevenlabs_agent_ids": [a.elevenlabs_agent_id for a in by_user[u.id]],
                 "weight": round(u.weight, 6)}
                for u in self.users
            ],
            "agents": [
                {"agent_id": a.id, "user_id": a.user_id,
                 "elevenlabs_agent_id": a.elevenlabs_agent_id, "name": a.name, "status": a.status}
                for a in self.agents
            ],
        }
