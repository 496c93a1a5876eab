"""One run's orchestration: configuration, the runner, monitoring, progress and
the run directory."""
