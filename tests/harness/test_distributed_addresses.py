"""A run across machines: where the stack listens, what other machines are told, and the
one-line exit 2 for an address that cannot work. Fast: nothing is started; the only
sockets opened are bound and closed again (or a UDP socket connected, which sends nothing).
"""

from __future__ import annotations

import re
import socket
import sys
from pathlib import Path
from typing import ClassVar

import psutil
import pytest

from harness import cli
from harness.errors import UsageError
from harness.run import runner as runner_module
from harness.run.config import RunConfig
from harness.run.runner import Run
from harness.stack import address
from harness.stack import stack as stack_module
from harness.stack.stack import Stack, StackConfig, StackInfo


@pytest.fixture(autouse=True)
def keep_pytests_signal_handlers(monkeypatch):
    monkeypatch.setattr(cli.signal, "signal", lambda *_: None)


def never(*_args, **_kwargs):
    raise AssertionError("called when it should not be")


def _foreign_address() -> str:
    """A documentation address (RFC 5737) that is not one of this machine's."""
    mine = {a.address for addrs in psutil.net_if_addrs().values() for a in addrs}
    return next(a for a in ("203.0.113.254", "198.51.100.254", "192.0.2.254")
                if a not in mine)


FOREIGN = _foreign_address()


# ---- the pure choices -----------------------------------------------------------------

@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "0.0.0.0", "10.0.0.5"])
def test_a_bind_host_is_an_ipv4_address(host):
    address.check_bind_host(host)


@pytest.mark.parametrize("host", ["localhost", "", "10.0.0.256", "224.0.0.1",
                                  "255.255.255.255", "::", "10.0.0.5:80", "*"])
def test_anything_else_is_no_bind_host(host):
    with pytest.raises(UsageError, match="--master-bind-host must be an IPv4 address"):
        address.check_bind_host(host)


@pytest.mark.parametrize("host, bind", [
    ("10.0.0.5", "0.0.0.0"), ("loadbox.internal", "0.0.0.0"), ("host-1", "10.0.0.5"),
    ("203.0.113.7", "10.0.0.5"), ("127.0.0.2", "127.0.0.2"), ("127.0.0.1", "0.0.0.0"),
])
def test_an_advertised_address_others_can_connect_to(host, bind):
    address.check_advertise_host(host, bind)


@pytest.mark.parametrize("host, words", [
    ("0.0.0.0", "not an address a machine can connect to"),
    ("239.1.1.1", "not an address a machine can connect to"),
    ("10.0.0.5:8000", "without a port"),
    ("::1", "not IPv6"),
    ("bad_name", "neither an IPv4 address nor a DNS name"),
    ("-x.example", "neither an IPv4 address nor a DNS name"),
    ("1.2.3.999", "neither an IPv4 address nor a DNS name"),
    ("", "neither an IPv4 address nor a DNS name"),
])
def test_an_advertised_address_nobody_can_connect_to(host, words):
    with pytest.raises(UsageError, match=words) as caught:
        address.check_advertise_host(host, "0.0.0.0")
    assert str(caught.value).startswith(f"--advertise-host {host!r}")
    assert "\n" not in str(caught.value)


def test_advertising_beyond_a_loopback_bind_names_the_fix():
    with pytest.raises(UsageError, match="listen on 127.0.0.1 only.*--master-bind-host 0.0.0.0"):
        address.check_advertise_host("10.0.0.5", "127.0.0.1")


def test_the_local_address_answers_on_this_machine():
    assert address.local_host("0.0.0.0") == "127.0.0.1"
    assert address.local_host("127.0.0.1") == "127.0.0.1"
    assert address.local_host("127.0.0.2") == "127.0.0.2"  # nothing answers 127.0.0.1 there
    assert address.local_host("10.0.0.5") == "10.0.0.5"


def test_the_advertised_address_given_concrete_or_found():
    assert address.advertised_host("0.0.0.0", "box.internal", never) == "box.internal"
    assert address.advertised_host("127.0.0.1", None, never) == "127.0.0.1"
    assert address.advertised_host("127.0.0.2", None, never) == "127.0.0.2"
    assert address.advertised_host("10.0.0.5", None, never) == "10.0.0.5"
    assert address.advertised_host("0.0.0.0", None, lambda: "10.0.0.9") == "10.0.0.9"


def test_no_address_to_advertise_is_one_line_naming_the_option():
    with pytest.raises(UsageError) as caught:
        address.advertised_host("0.0.0.0", None, lambda: None)
    assert "no non-loopback IPv4 address" in str(caught.value)
    assert "--advertise-host" in str(caught.value) and "\n" not in str(caught.value)


# ---- discovery, with the network stack stubbed -----------------------------------------

class FakeUdp:
    def __init__(self, source: str | None) -> None:
        self.source = source
        self.sent = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def connect(self, where):
        if self.source is None:
            raise OSError(101, "Network is unreachable")

    def getsockname(self):
        return (self.source, 40000)

    def sendto(self, *args):  # pragma: no cover - would be a bug
        self.sent = True


def discover(monkeypatch, udp_source: str | None, hostname_ip: str | OSError) -> str | None:
    monkeypatch.setattr(address.socket, "socket", lambda *a, **k: FakeUdp(udp_source))
    monkeypatch.setattr(address.socket, "gethostname", lambda: "box")

    def resolve(_name):
        if isinstance(hostname_ip, OSError):
            raise hostname_ip
        return hostname_ip

    monkeypatch.setattr(address.socket, "gethostbyname", resolve)
    return address.primary_ipv4()


def test_discovery_prefers_the_route_source_address(monkeypatch):
    assert discover(monkeypatch, "10.1.2.3", "192.168.1.4") == "10.1.2.3"


def test_discovery_falls_back_to_the_hostname(monkeypatch):
    assert discover(monkeypatch, None, "192.168.1.4") == "192.168.1.4"
    assert discover(monkeypatch, "127.0.0.1", "192.168.1.4") == "192.168.1.4"


def test_discovery_finds_nothing_on_loopback_only(monkeypatch):
    # Debian maps the hostname to 127.0.1.1; a link-local address is no answer either
    assert discover(monkeypatch, None, "127.0.1.1") is None
    assert discover(monkeypatch, "169.254.3.4", OSError("no name")) is None


def test_discovery_on_this_machine_is_an_address_or_nothing():
    found = address.primary_ipv4()
    assert found is None or not address.ipaddress.IPv4Address(found).is_loopback


def test_a_foreign_address_cannot_be_listened_on():
    address.check_listenable("127.0.0.1")
    with pytest.raises(UsageError, match=rf"cannot listen on {re.escape(FOREIGN)}: .*this "
                                         "machine"):
        address.check_listenable(FOREIGN)


# ---- the stack and the run's configuration ----------------------------------------------

def test_the_stack_listens_on_loopback_by_default():
    config = StackConfig()
    assert config.bind_host == "127.0.0.1" and config.advertise_host is None
    assert RunConfig().master_bind_host == "127.0.0.1"


def test_the_master_binds_where_the_target_does():
    config = RunConfig(stack=StackConfig(bind_host="0.0.0.0"))
    assert config.master_bind_host == "0.0.0.0"


@pytest.mark.parametrize("stack, words", [
    ({"bind_host": "localhost"}, "--master-bind-host must be an IPv4 address"),
    ({"bind_host": "0.0.0.0", "advertise_host": "0.0.0.0"}, "--advertise-host '0.0.0.0'"),
    ({"advertise_host": "10.0.0.5"}, "listen on 127.0.0.1 only"),
])
def test_bad_addresses_are_refused_by_validate_without_a_socket(monkeypatch, stack, words):
    monkeypatch.setattr(socket, "socket", never)
    with pytest.raises(UsageError, match=words):
        RunConfig(stack=StackConfig(**stack)).validate()


@pytest.mark.parametrize("fields, words", [
    ({"master_bind_port": 70000}, "--master-bind-port must be between 0 and 65535"),
    ({"master_bind_port": -1}, "--master-bind-port must be between 0 and 65535"),
    ({"master_bind_port": 8000, "stack": StackConfig(port=8000)},
     "--master-bind-port and --port are both 8000"),
])
def test_a_master_port_that_cannot_work(fields, words):
    with pytest.raises(UsageError, match=words):
        RunConfig(**fields).validate()


def test_preflight_finds_the_address_before_anything_starts(monkeypatch, tmp_path):
    monkeypatch.setattr(stack_module.database, "EmbeddedPostgres", never)
    monkeypatch.setattr(address, "primary_ipv4", lambda: "10.0.0.9")
    stack = Stack(StackConfig(bind_host="0.0.0.0", run_dir=tmp_path / "run"))
    assert stack.preflight() == "10.0.0.9" == stack.advertised
    monkeypatch.setattr(address, "primary_ipv4", lambda: None)
    stack = Stack(StackConfig(bind_host="0.0.0.0", state_dir=tmp_path / "state",
                              run_dir=tmp_path / "run"))
    with pytest.raises(UsageError, match="no non-loopback IPv4"), stack:
        pass
    assert not (tmp_path / "run").exists()


def test_stack_info_keeps_the_local_url_apart():
    info = StackInfo(target_url="http://10.0.0.5:8000", stub_url="http://127.0.0.1:2",
                     metrics_url="http://127.0.0.1:8000/metrics", database_url="postgresql://x",
                     manifest="/m.json", postgres_version="16.4",
                     local_url="http://127.0.0.1:8000")
    assert info.local_url == "http://127.0.0.1:8000"
    assert "local_url" not in info.as_json()  # `harness stack up --json` is unchanged
    same = StackInfo(target_url="http://127.0.0.1:1", stub_url="", metrics_url="",
                     database_url="", manifest="", postgres_version="")
    assert same.local_url == same.target_url


# ---- what Locust is started with --------------------------------------------------------

class Recorded:
    """ManagedProcess stand-in: remembers what would have been started."""

    started: ClassVar[list[Recorded]] = []

    def __init__(self, name, argv, log_path, env=None, cwd=None, cpus=None) -> None:
        self.name, self.argv, self.env = name, argv, env or {}

    def start(self) -> Recorded:
        Recorded.started.append(self)
        return self


class Phases:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def phase(self, line: str) -> None:
        self.lines.append(line)


def started_locust(monkeypatch, tmp_path: Path, config: RunConfig, advertised: str,
                   port: int = 8123) -> tuple[list[Recorded], list[str]]:
    Recorded.started = []
    monkeypatch.setattr(runner_module, "ManagedProcess", Recorded)
    monkeypatch.setattr(runner_module, "free_port", lambda host: 5599)
    local = address.local_host(config.master_bind_host)
    info = StackInfo(target_url=f"http://{advertised}:{port}", stub_url="http://127.0.0.1:2",
                     metrics_url=f"http://{local}:{port}/metrics", database_url="",
                     manifest=str(tmp_path / "dataset.json"), postgres_version="16",
                     local_url=f"http://{local}:{port}")
    phases = Phases()
    run = Run(config, phases)
    run.advertised = advertised
    run._start_locust(info)
    return Recorded.started, phases.lines


def arg(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_remote_workers_are_told_the_advertised_address(monkeypatch, tmp_path):
    config = RunConfig(scenario="dashboard", shape="ramp", workers=1, remote_workers=2,
                       out=tmp_path, stack=StackConfig(bind_host="0.0.0.0"))
    procs, lines = started_locust(monkeypatch, tmp_path, config, "10.0.0.5")
    master, local_worker = procs
    assert arg(master.argv, "--host") == "http://10.0.0.5:8123"  # handed to every worker
    assert arg(master.argv, "--master-bind-host") == "0.0.0.0"
    assert arg(master.argv, "--master-bind-port") == "5599"
    assert arg(master.argv, "--expect-workers") == "3"
    assert master.env["HARNESS_METRICS_URL"] == "http://127.0.0.1:8123/metrics"
    assert arg(local_worker.argv, "--master-host") == "127.0.0.1"
    waiting = [line for line in lines if "remote worker" in line]
    assert waiting == [("waiting for 2 remote worker(s): harness worker --master "
                        "10.0.0.5:5599 --scenario dashboard --shape ramp")]
    assert "0.0.0.0" not in waiting[0]


def test_a_concrete_bind_host_is_where_everything_local_connects(monkeypatch, tmp_path):
    config = RunConfig(workers=1, remote_workers=1, master_bind_port=5601, out=tmp_path,
                       stack=StackConfig(bind_host="127.0.0.2"))
    (master, local_worker), lines = started_locust(monkeypatch, tmp_path, config, "127.0.0.2")
    assert arg(master.argv, "--master-bind-port") == "5601"
    assert arg(local_worker.argv, "--master-host") == "127.0.0.2"
    assert master.env["HARNESS_METRICS_URL"] == "http://127.0.0.2:8123/metrics"
    assert lines[-1].endswith("harness worker --master 127.0.0.2:5601 --scenario mixed")


def test_a_single_process_run_scrapes_locally_too(monkeypatch, tmp_path):
    config = RunConfig(workers=0, out=tmp_path)
    (local,), _ = started_locust(monkeypatch, tmp_path, config, "127.0.0.1")
    assert arg(local.argv, "--host") == "http://127.0.0.1:8123"
    assert local.env == {"HARNESS_METRICS_URL": "http://127.0.0.1:8123/metrics"}


# ---- the command line: one line, exit 2, nothing started --------------------------------

def exit_code_and_stderr(monkeypatch, capsys, argv: list[str]) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["harness", *argv])
    with pytest.raises(SystemExit) as info:
        cli.main()
    return info.value.code, capsys.readouterr().err


@pytest.mark.parametrize("args, words", [
    (["--master-bind-host", "localhost"], "--master-bind-host must be an IPv4 address"),
    (["--master-bind-host", "0.0.0.0", "--advertise-host", "0.0.0.0"], "--advertise-host"),
    (["--advertise-host", "10.0.0.5"], "listen on 127.0.0.1 only"),
    (["--master-bind-host", "0.0.0.0", "--advertise-host", "10.0.0.5:80"], "without a port"),
    (["--master-bind-host", FOREIGN], f"cannot listen on {FOREIGN}"),
    (["--master-bind-port", "99999"], "--master-bind-port must be between"),
])
def test_harness_run_refuses_an_address_that_cannot_work(monkeypatch, capsys, tmp_path,
                                                         args, words):
    monkeypatch.setattr(stack_module.database, "EmbeddedPostgres", never)
    code, err = exit_code_and_stderr(monkeypatch, capsys, [
        "run", "--out", str(tmp_path), "--state-dir", str(tmp_path / "state"), *args])
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in err, err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "state").exists()


def test_harness_run_without_an_address_to_advertise(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(stack_module.database, "EmbeddedPostgres", never)
    monkeypatch.setattr(address, "primary_ipv4", lambda: None)
    code, err = exit_code_and_stderr(monkeypatch, capsys, [
        "run", "--out", str(tmp_path), "--master-bind-host", "0.0.0.0"])
    assert code == 2 and "give one with --advertise-host" in err, err
    assert not (tmp_path / "runs").exists()


def test_a_busy_master_port_is_exit_2_before_anything_starts(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(stack_module.database, "EmbeddedPostgres", never)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, err = exit_code_and_stderr(monkeypatch, capsys, [
            "run", "--out", str(tmp_path), "--master-bind-port", str(port)])
    assert code == 2 and f"port {port} on 127.0.0.1 is already in use" in err, err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args, words", [
    (["--master", "0.0.0.0:5557"], "--master '0.0.0.0' is not an address"),
    (["--master", "10.0.0.5"], "--master must be HOST:PORT"),
    (["--master", "10.0.0.5:99999"], "--master must be HOST:PORT"),
    (["--master", "bad_host:5557"], "neither an IPv4 address nor a DNS name"),
    (["--master", "10.0.0.5:5557", "--shape", "wobble"], "unknown shape 'wobble'"),
    (["--master", "10.0.0.5:5557", "--scenario", "nope"], "unknown scenario 'nope'"),
])
def test_harness_worker_refuses_what_cannot_join(monkeypatch, capsys, args, words):
    monkeypatch.setattr("subprocess.Popen", never)
    code, err = exit_code_and_stderr(monkeypatch, capsys, ["worker", *args])
    assert code == 2 and words in err and "Traceback" not in err, err
