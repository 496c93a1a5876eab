"""A bug inside a command is one line and exit 3, never a traceback (unless asked for)."""

from __future__ import annotations

import sys

import pytest

from harness import cli
from harness.run import layout


def boom(*_args, **_kwargs):
    raise RuntimeError("list_runs exploded")


@pytest.fixture(autouse=True)
def keep_pytests_signal_handlers(monkeypatch):
    monkeypatch.setattr(cli.signal, "signal", lambda *_: None)


def test_an_unexpected_exception_is_one_line_and_exit_3(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(layout, "list_runs", boom)
    monkeypatch.setattr(sys, "argv", ["harness", "runs", "--out", str(tmp_path)])
    monkeypatch.delenv("HARNESS_DEBUG", raising=False)
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 3
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert lines == [("internal error: RuntimeError: list_runs exploded (a bug in the harness; "
                      "HARNESS_DEBUG=1 shows the traceback)")]


def test_harness_debug_lets_the_traceback_through(monkeypatch, tmp_path):
    monkeypatch.setattr(layout, "list_runs", boom)
    monkeypatch.setattr(sys, "argv", ["harness", "runs", "--out", str(tmp_path)])
    monkeypatch.setenv("HARNESS_DEBUG", "1")
    with pytest.raises(RuntimeError, match="exploded"):
        cli.main()


@pytest.mark.parametrize("args, message", [
    (["--trace-interleave", "2.5s"], "--trace-interleave must be whole seconds, not '2.5s'"),
    (["--trace-interleave", "30s", "--duration", "1m"], "fewer than 3 blocks of each arm"),
    (["--trace-interleave", "soon"], "soon"),
])
def test_a_bad_interleave_is_exit_2_before_anything_starts(monkeypatch, capsys, tmp_path,
                                                           args, message):
    monkeypatch.setattr(sys, "argv", ["harness", "run", "--out", str(tmp_path), *args])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()
