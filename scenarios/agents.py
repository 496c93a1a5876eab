"""The agents page and agent details (the path that calls ElevenLabs for configurations).

    locust -f scenarios/agents.py --host http://127.0.0.1:PORT --harness-manifest dataset.json
"""

from __future__ import annotations

from locust import task

from scenarios.common import DashboardApiUser

AGENTS = "/api/v1/agents"
AGENT = "/api/v1/agents/{agent_id}"


class AgentsUser(DashboardApiUser):
    """Someone managing their voice agents: the list, then one of their own agents.

    One task every 2 s per user; only seeded users that own agents are drawn."""

    pace = 0.5
    needs_agents = True

    @task(3)
    def agents(self) -> None:
        self.api("GET", AGENTS)

    @task(2)
    def agent(self) -> None:
        agent_id = self.rng.choice(self.account["agent_ids"])

        def same_agent(body: dict) -> str | None:
            got = (body.get("agent") or {}).get("agent_id")
            return None if got == agent_id else f"asked for agent {agent_id}, got {got!r}"

        self.api("GET", AGENT, path=f"{AGENTS}/{agent_id}", validate=same_agent)
