"""A throwaway Ray cluster of real nodes on this machine, for the tests and bench/scale.py.

Each node is a `ray start --block` in a session of its own, with free ports and the
cluster's own temp folder. stop() ends exactly those sessions (every process Ray started
for a node, workers included, stays in the node's session) and checks nothing is left:
never a bare `ray stop`, which would stop every Ray cluster of the machine.
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

RAY = Path(sys.executable).with_name("ray")
# `ray start` resolves 127.0.0.1 to the machine's network address (Ray 2.60,
# services.resolve_ip_for_localhost); another loopback address is left as given, so the
# whole cluster advertises and talks over loopback only.
NODE_IP = "127.0.0.2"
STARTED = "Ray runtime started"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def session_members(sids: Iterable[int]) -> list[int]:
    """Live (not zombie) processes in these sessions."""
    sids, found = set(sids), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            if os.getsid(pid) not in sids:
                continue
            with open(f"/proc/{pid}/stat", "rb") as handle:
                state = handle.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in (b"Z", b"X"):
            found.append(pid)
    return found


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


class LocalRayCluster:
    """`nodes` Ray nodes of `cpus` CPUs each, all on this machine.

    Args:
        root: a folder of its own (Ray's temp dir and the nodes' logs go there).
        auth_mode: RAY_AUTH_MODE for every process of the cluster ("disabled" or "token").
        token: the token when auth_mode is "token" (a random one if None).
        env: extra environment for the nodes (e.g. PYTHONPATH, so workers import `qa`).
    """

    def __init__(self, root: Path, nodes: int = 2, cpus: int = 1, auth_mode: str = "disabled",
                 token: str | None = None, env: dict[str, str] | None = None) -> None:
        self.root = Path(root)
        self.nodes = nodes
        self.cpus = cpus
        self.auth_mode = auth_mode
        self.token = token or (secrets.token_hex(16) if auth_mode == "token" else None)
        self.port = free_port(NODE_IP)
        self.address = f"{NODE_IP}:{self.port}"
        self.processes: list[subprocess.Popen] = []
        self.sids: list[int] = []
        self._env = env or {}
        # Ray's socket paths must stay under 107 bytes: keep the temp folder short.
        self.temp_dir = Path(f"/tmp/vbray-{os.getpid()}-{self.port}")

    def client_env(self) -> dict[str, str]:
        """What a driver of this cluster needs in its environment (auth, no telemetry)."""
        env = {"RAY_AUTH_MODE": self.auth_mode, "RAY_USAGE_STATS_ENABLED": "0"}
        if self.token:
            env["RAY_AUTH_TOKEN"] = self.token
        return env

    def _node_env(self) -> dict[str, str]:
        env = dict(os.environ)
        for name in ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
            env.pop(name, None)
        env.update(self._env, **self.client_env())
        return env

    def _start_node(self, head: bool, attempts: int = 3) -> None:
        """Start one node; again if `ray start` gives up (it waits a fixed 30 s for its
        raylet to register, which a heavily loaded machine can miss)."""
        for attempt in range(1, attempts + 1):
            try:
                return self._try_node(head)
            except RuntimeError:
                failed, process = self.sids.pop(), self.processes.pop()
                for pid in session_members([failed]):
                    os.kill(pid, signal.SIGKILL)
                process.wait(timeout=30)
                if attempt == attempts:
                    raise
                if head:  # a fresh port: the dead GCS's may linger
                    self.port = free_port(NODE_IP)
                    self.address = f"{NODE_IP}:{self.port}"

    def _try_node(self, head: bool) -> None:
        index = len(self.processes)
        ports = ["--dashboard-agent-listen-port", str(free_port()),
                 "--dashboard-agent-grpc-port", str(free_port()),
                 "--metrics-export-port", str(free_port()),
                 "--runtime-env-agent-port", str(free_port())]
        if head:
            role = ["--head", "--port", str(self.port), "--temp-dir", str(self.temp_dir),
                    "--include-dashboard", "false", "--dashboard-port", str(free_port())]
        else:
            role = ["--address", self.address]
        log = (self.root / f"node-{index}.log").open("w")
        process = subprocess.Popen(
            [str(RAY), "start", *role, "--node-ip-address", NODE_IP, "--num-cpus", str(self.cpus),
             "--object-store-memory", str(200 << 20), "--disable-usage-stats", "--block",
             *ports],
            env=self._node_env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=self.root,
        )
        log.close()
        self.processes.append(process)
        self.sids.append(process.pid)  # a new session's id is its leader's pid
        self._wait_started(index, process)

    def _wait_started(self, index: int, process: subprocess.Popen, timeout: float = 120) -> None:
        log = self.root / f"node-{index}.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            if STARTED in text:
                return
            if process.poll() is not None:
                raise RuntimeError(
                    f"ray node {index} exited ({process.returncode}):\n{text[-3000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"ray node {index} not started in {timeout} s:\n"
                           f"{log.read_text(errors='replace')[-3000:]}")

    def start(self) -> "LocalRayCluster":
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self._start_node(head=True)
            for _ in range(self.nodes - 1):
                self._start_node(head=False)
        except BaseException:
            self.stop()
            raise
        return self

    def node_processes(self, node: int) -> list[tuple[int, str]]:
        """(pid, command line) of every live process of node `node` (0 is the head)."""
        return [(pid, cmdline(pid)) for pid in session_members([self.sids[node]])]

    def actor_pids(self, node: int | None = None) -> list[int]:
        """Verbatim's model actors (worker processes titled ray::EmbedActor...)."""
        nodes = range(len(self.sids)) if node is None else [node]
        return [pid for n in nodes for pid, cmd in self.node_processes(n)
                if cmd.startswith("ray::EmbedActor")]

    def stop(self, grace: float = 5.0) -> list[int]:
        """End every process of this cluster's sessions; the pids still alive (none)."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # `ray start --block` stops its node
        deadline = time.monotonic() + grace
        while session_members(self.sids) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in session_members(self.sids):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        deadline = time.monotonic() + 10
        while session_members(self.sids) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = session_members(self.sids)
        if not left:
            import shutil

            shutil.rmtree(self.temp_dir, ignore_errors=True)
        return left

    def __enter__(self) -> "LocalRayCluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        left = self.stop()
        if left:
            raise RuntimeError(f"ray processes left running: {left}")
