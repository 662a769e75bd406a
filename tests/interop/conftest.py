"""pytest fixtures for the real-client interop tests.

`broker` starts a fresh chronik process per test:
    $CHRONIK_BIN standalone --data-dir <tmp>/data --listen 127.0.0.1:<free port> --advertised-addr 127.0.0.1
(CHRONIK_BIN defaults to target/release/chronik-server), or, when EXTERNAL_BOOTSTRAP=host:port is
set, points at an already running broker (e.g. Apache Kafka, to validate this harness); tests marked
`chronik_only` (they kill/restart the broker or read its log) are then deselected, loudly.
"""
import atexit
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import kafka_wire
from helpers import MEASUREMENTS, REPO

EXTERNAL = os.environ.get("EXTERNAL_BOOTSTRAP", "").strip()
START_TIMEOUT = float(os.environ.get("INTEROP_START_TIMEOUT", "30"))
# chronik reads CHRONIK_* environment variables as configuration and rejects unknown ones, so the
# harness's own CHRONIK_BIN must not reach the broker process.
HARNESS_ENV = ("CHRONIK_BIN",)
_LIVE = set()  # Popen objects of brokers still running, killed at exit whatever happens


@atexit.register
def _kill_leftovers():
    for p in list(_LIVE):
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)


def chronik_bin():
    return Path(os.environ.get("CHRONIK_BIN", REPO / "target" / "release" / "chronik-server"))


# --- collection: markers, external mode, summary -------------------------------------------------
def pytest_configure(config):
    config.addinivalue_line(
        "markers", "chronik_only: needs a chronik process (kill -9 / restart / its log); deselected "
                   "when EXTERNAL_BOOTSTRAP points at another broker")


def pytest_report_header(config):
    if EXTERNAL:
        return f"interop broker: EXTERNAL {EXTERNAL} (chronik_only tests deselected)"
    return f"interop broker: chronik {chronik_bin()} (a fresh process per test)"


_DESELECTED = []


def pytest_collection_modifyitems(config, items):
    if not EXTERNAL:
        return
    keep = []
    for item in items:
        (_DESELECTED if item.get_closest_marker("chronik_only") else keep).append(item)
    if _DESELECTED:
        config.hook.pytest_deselected(items=list(_DESELECTED))
        items[:] = keep
        msg = (f"\n!!! EXTERNAL_BOOTSTRAP={EXTERNAL}: deselected {len(_DESELECTED)} chronik_only "
               f"test(s) that need to kill/restart the broker or read its log:\n"
               + "".join(f"!!!   {i.nodeid}\n" for i in _DESELECTED))
        print(msg, file=sys.stderr, flush=True)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    stats = terminalreporter.stats
    if MEASUREMENTS:
        terminalreporter.section("interop measurements (printed, never asserted)")
        for line in MEASUREMENTS:
            terminalreporter.write_line(line)
    if _DESELECTED:
        terminalreporter.write_line(
            f"NOTE: {len(_DESELECTED)} chronik_only test(s) deselected because EXTERNAL_BOOTSTRAP={EXTERNAL}")
    passed = len(stats.get("passed", []))
    failed = len(stats.get("failed", [])) + len(stats.get("error", []))
    skipped = len(stats.get("skipped", []))
    # the plain closing line CI reads
    terminalreporter.write_line(f"interop: {passed} passed, {failed} failed, {skipped} skipped")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, "rep_" + rep.when, rep)
    return rep


# --- the broker ---------------------------------------------------------------------------------
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ChronikBroker:
    """A chronik-server child process with its own data dir and port."""

    external = False

    def __init__(self, workdir: Path):
        self.bin = chronik_bin()
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.log_path = workdir / "broker.log"
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.proc = None
        self.starts = 0
        self.killed_on_purpose = False

    def start(self):
        if not self.bin.is_file() or not os.access(self.bin, os.X_OK):
            pytest.fail(f"chronik binary {self.bin} is missing or not executable: build it with "
                        f"`cargo build --release` or set CHRONIK_BIN", pytrace=False)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [str(self.bin), "standalone", "--data-dir", str(self.data_dir),
               "--listen", self.bootstrap, "--advertised-addr", "127.0.0.1",
               "--admin-listen", "127.0.0.1:0"]  # never the default admin port 9300
        self.starts += 1
        self.killed_on_purpose = False
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts}: {' '.join(cmd)}\n".encode())
            log.flush()
            env = {k: v for k, v in os.environ.items() if k not in HARNESS_ENV}
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env)
        _LIVE.add(self.proc)
        self._wait_ready()

    def _wait_ready(self):
        """Bounded wait: the port accepts connections and answers ApiVersions v0."""
        deadline = time.monotonic() + START_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"chronik exited with code {self.proc.returncode} during startup\n"
                            f"{self.log_tail(100)}", pytrace=False)
            try:
                if kafka_wire.api_versions_ok(self.bootstrap, timeout=2):
                    return
                last = "ApiVersions v0 answered with an error"
            except (OSError, AssertionError, ValueError) as e:
                last = repr(e)
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"chronik not ready on {self.bootstrap} after {START_TIMEOUT}s ({last})\n"
                    f"{self.log_tail(100)}", pytrace=False)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        """SIGKILL: no shutdown hooks, no flush. Waits until the process is gone."""
        assert self.alive(), "kill9(): broker is not running"
        self.killed_on_purpose = True
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        _LIVE.discard(self.proc)

    def stop(self, grace=10):
        """SIGTERM, then SIGKILL after `grace` seconds."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        _LIVE.discard(self.proc)

    def restart(self):
        """Stop (gracefully, if still running) and start again on the same data dir and port."""
        self.stop()
        self.start()

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=100):
        lines = self.log_text().splitlines()[-n:]
        return f"--- last {len(lines)} lines of {self.log_path} ---\n" + "\n".join(lines)


class ExternalBroker:
    """An already running broker at EXTERNAL_BOOTSTRAP; it is never started or stopped here."""

    external = True

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap

    def alive(self):
        try:
            return kafka_wire.api_versions_ok(self.bootstrap, timeout=5)
        except (OSError, AssertionError, ValueError):
            return False

    def _chronik_only(self, what):
        pytest.fail(f"{what}() needs a chronik process; mark the test chronik_only", pytrace=False)

    def kill9(self): self._chronik_only("kill9")
    def restart(self): self._chronik_only("restart")
    def log_text(self): self._chronik_only("log_text")
    def stop(self): pass


@pytest.fixture
def broker(request, tmp_path):
    if EXTERNAL:
        b = ExternalBroker(EXTERNAL)
        if not b.alive():
            pytest.fail(f"EXTERNAL_BOOTSTRAP={EXTERNAL} does not answer ApiVersions v0", pytrace=False)
        yield b
        return
    b = ChronikBroker(tmp_path)
    b.start()
    try:
        yield b
    finally:
        died = None if b.alive() or b.killed_on_purpose else b.proc.returncode
        b.stop()
        failed = any(getattr(getattr(request.node, f"rep_{w}", None), "failed", False)
                     for w in ("setup", "call"))
        if failed or died is not None:
            print(b.log_tail(100))
        if died is not None and not failed:
            pytest.fail(f"chronik exited unexpectedly (code {died}) during the test", pytrace=False)
