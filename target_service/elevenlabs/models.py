"""Parsed ElevenLabs agent configuration and per-agent fetch results.

:class:`AgentConfig` mirrors the part of ``GET /v1/convai/agents/{agent_id}``
the dashboard shows. It ignores unknown fields (the upstream schema grows
often, and a new field must never break the agents page) and keeps nesting
identical to the API, so ``AgentConfig.model_validate(snapshot)`` works for
a snapshot stored as ``config.to_snapshot()`` as well as for a live body.
Flat convenience properties (``llm``, ``voice_id``, ...) spare callers the
nesting.

:class:`FetchResult` is what :meth:`ElevenLabsClient.get_agents` returns per
agent: either ``ok`` with a config, or failed with a bounded ``reason``
(the same label values as the metrics) and the original error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from target_service.elevenlabs.errors import ElevenLabsError


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class PromptConfig(_Lenient):
    prompt: str = ""
    llm: str | None = None
    temperature: float | None = None


class AgentSection(_Lenient):
    first_message: str = ""
    language: str = "en"
    prompt: PromptConfig = Field(default_factory=PromptConfig)


class TTSConfig(_Lenient):
    model_id: str | None = None
    voice_id: str | None = None


class ConversationConfig(_Lenient):
    agent: AgentSection = Field(default_factory=AgentSection)
    tts: TTSConfig = Field(default_factory=TTSConfig)


class AgentMetadata(_Lenient):
    created_at_unix_secs: int | None = None
    updated_at_unix_secs: int | None = None


class AgentConfig(_Lenient):
    """One agent's configuration as the ElevenLabs API describes it."""

    agent_id: str
    name: str
    conversation_config: ConversationConfig = Field(default_factory=ConversationConfig)
    metadata: AgentMetadata = Field(default_factory=AgentMetadata)
    platform_settings: dict[str, Any] | None = None
    tags: list[str] = Field(default_factory=list)

    @property
    def first_message(self) -> str:
        return self.conversation_config.agent.first_message

    @property
    def language(self) -> str:
        return self.conversation_config.agent.language

    @property
    def prompt(self) -> str:
        return self.conversation_config.agent.prompt.prompt

    @property
    def llm(self) -> str | None:
        return self.conversation_config.agent.prompt.llm

    @property
    def temperature(self) -> float | None:
        return self.conversation_config.agent.prompt.temperature

    @property
    def tts_model_id(self) -> str | None:
        return self.conversation_config.tts.model_id

    @property
    def voice_id(self) -> str | None:
        return self.conversation_config.tts.voice_id

    @property
    def updated_at_unix_secs(self) -> int | None:
        return self.metadata.updated_at_unix_secs

    def to_snapshot(self) -> dict[str, Any]:
        """JSON-ready dict to store as the database fallback."""
        return self.model_dump(mode="json")


@dataclass(frozen=True, slots=True)
class FetchResult:
    """Outcome of fetching one agent within a page request."""

    agent_id: str
    config: AgentConfig | None = None
    reason: str | None = None
    error: ElevenLabsError | None = None
    attempts: int = 0
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.config is not None

    @property
    def failed(self) -> bool:
        return self.config is None

    @classmethod
    def success(cls, agent_id: str, config: AgentConfig, *, attempts: int,
                elapsed_s: float) -> FetchResult:
        return cls(agent_id=agent_id, config=config, attempts=attempts, elapsed_s=elapsed_s)

    @classmethod
    def failure(cls, agent_id: str, error: ElevenLabsError, *,
                elapsed_s: float) -> FetchResult:
        return cls(agent_id=agent_id, reason=error.reason, error=error,
                   attempts=error.attempts, elapsed_s=elapsed_s)
