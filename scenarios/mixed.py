"""Mixed dashboard traffic: readers, agent managers and a trickle of writes.

    locust -f scenarios/mixed.py --host http://127.0.0.1:PORT --harness-manifest dataset.json

Weights 70 / 25 / 5 (DashboardUser / AgentsUser / WriterUser): a dashboard's
traffic is dominated by people looking at the overview and charts; the agents
page is visited less often (configuration changes are rare), and writes come
from calls finishing, which arrive through the API at a much lower rate than
page views - but they must be there, because every write invalidates caches
and refreshes the KPI view, which is what makes reads slow in real life.
"""

from __future__ import annotations

# modules, not classes: Locust collects every User class in a locustfile's namespace,
# and two classes with one name are an error
from scenarios import agents, dashboard, writer


class DashboardUser(dashboard.DashboardUser):
    weight = 70


class AgentsUser(agents.AgentsUser):
    weight = 25


class WriterUser(writer.WriterUser):
    weight = 5
