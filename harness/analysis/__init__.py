"""Pure analysis: numbers and models in, numbers and models out.

No file, process, network, gevent or Locust code, and nothing from
`loadgen/`, `stack/` or `run/` (a test enforces it), so every statistic can be
tested on synthetic data and reused by the gate, the report and the exporters.
"""
