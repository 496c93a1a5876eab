"""`run.json` as the runner writes it: the configuration, the dataset actually used, the code."""

from __future__ import annotations

import json
import subprocess

from harness.run import layout
from harness.run.config import RunConfig
from harness.run.run_info import run_info


def test_the_record_takes_the_dataset_from_the_manifest_and_the_commit_from_git(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    layout.dataset_json(run_dir).write_text(json.dumps(
        {"preset": "tiny", "seed": 7, "generator_version": 3, "anchor_date": "2026-01-02"}))
    cfg = RunConfig(users=12, trace_sampling=0.1, trace_interleave_s=10)
    info = run_info(cfg, run_dir, run_id="r-1", status="interrupted", started_at=1.7e9,
                    notes=["a note"], postgres_version="16.4")
    layout.save_run_info(info, run_dir)
    back = layout.load_run_info(run_dir)
    assert back == info
    assert (back.run_id, back.status, back.users, back.notes) == ("r-1", "interrupted", 12,
                                                                  ["a note"])
    assert (back.dataset.preset, back.dataset.seed, back.dataset.generator_version,
            back.dataset.anchor_date) == ("tiny", 7, 3, "2026-01-02")
    assert back.trace_guard_s == cfg.trace_guard_s and back.aborted is None
    assert back.machine.postgres_version == "16.4"
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert back.git_commit == head


def test_without_a_manifest_the_configured_dataset_is_recorded(tmp_path):
    cfg = RunConfig()
    info = run_info(cfg, tmp_path, run_id="r-2", status="failed", started_at=1.7e9, notes=[])
    assert (info.dataset.preset, info.dataset.seed) == (cfg.stack.dataset, cfg.stack.seed)
    assert info.trace_guard_s is None  # not an interleaved run


def test_the_live_status_is_read_when_whole_and_none_otherwise(tmp_path):
    """The watch loop reads live.json every quarter second while the plugin replaces it:
    absent or unreadable is "nothing yet", never an error."""
    assert layout.read_live(tmp_path) is None
    layout.live_json(tmp_path).write_text('{"t": 1.0, "phase": "measured", "users": 3, ')
    assert layout.read_live(tmp_path) is None
    layout.live_json(tmp_path).write_text(json.dumps(
        {"t": 1.0, "phase": "measured", "users": 3, "rps": 2.5}))
    live = layout.read_live(tmp_path)
    assert live is not None and live.users == 3 and live.phase == "measured"
