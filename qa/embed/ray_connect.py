"""Joining a Ray cluster for `--engine ray`, and failing fast: the address is probed, the
head's GCS asked once (a wrong token or a port that is not Ray's fails in seconds), and
ray.init run with a deadline. Ray errors are cut to one line that says what to do.
Ray is imported here and in ray_engine.py only, lazily.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time

from qa.errors import ClusterError, ConfigError

RAY_REQUIREMENT = "ray==2.60.0"
INSTALL_HINT = f"pip install 'verbatim-qa[ray]' (or pip install '{RAY_REQUIREMENT}')"
# Long enough for a connect across a data centre, short enough that a wrong address is
# an error before the user wonders whether it hangs.
PROBE_SECONDS = 3.0
# ray.init on a reachable port that is not (or not yet) a Ray head would retry for a
# minute or more; past this it is reported instead.
CONNECT_SECONDS = 30.0
# One request to the head's GCS: answered in milliseconds by a real one.
HANDSHAKE_SECONDS = 10.0
def import_ray():
    """The ray module, or a ConfigError that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(
            f"--engine ray needs Ray, which is not installed here ({exc.name or exc}): "
            f"{INSTALL_HINT}; `--engine local` (the default) needs no Ray"
        ) from None
    return ray


def resolve_address(flag: str | None, environ: dict[str, str] | None = None) -> str | None:
    """The cluster to use: the flag, else RAY_ADDRESS (as Ray's own tools read it), else
    None for a local Ray runtime started (and stopped) by this process."""
    environ = os.environ if environ is None else environ
    address = (flag if flag is not None else environ.get("RAY_ADDRESS", "")).strip()
    return None if address in ("", "local") else address


def host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of "HOST:PORT" or "ray://HOST:PORT"; None for "auto" (Ray finds the
    cluster started on this machine by `ray start`).

    Raises:
        ConfigError: the address has no port, or a port that is not a number.
    """
    if address == "auto":
        return None
    bare = address.removeprefix("ray://").rstrip("/")
    host, colon, port = bare.rpartition(":")
    host = host.strip("[]")  # [::1]:6379
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"--ray-address must look like HOST:PORT (the head's GCS port, e.g. "
            f"10.0.0.5:6379) or 'auto', got {address!r}"
        )
    return host, int(port)


def probe(address: str, timeout: float = PROBE_SECONDS) -> None:
    """Fail within `timeout` seconds if nothing listens at the cluster's address.

    ray.init would otherwise retry an unreachable head for a long time; a TCP connect
    says "nobody there" at once (refused) or after `timeout` (dropped).

    Raises:
        ClusterError: the address does not answer.
    """
    target = host_port(address)
    if target is None:
        return
    started = time.monotonic()
    try:
        socket.create_connection(target, timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise ClusterError(
            f"cannot reach the Ray cluster at {address}: {reason} (after "
            f"{time.monotonic() - started:.1f} s). Start it with `ray start --head --port "
            f"{target[1]}` on the head machine, or give the right --ray-address / RAY_ADDRESS"
        ) from None


def handshake(address: str, timeout: float = HANDSHAKE_SECONDS) -> None:
    """One request to the head's GCS, so that a wrong token or a port that is not Ray's
    is an error in seconds (ray.init retries either for 20 s to minutes).

    Raises:
        ClusterError: the head refused our credentials, or the port is not a Ray GCS.
    """
    if host_port(address) is None or address.startswith("ray://"):
        return  # "auto" and Ray Client addresses: ray.init knows how to find them
    ray = import_ray()
    try:  # private API of the pinned Ray: if it moves, ray.init still reports the same
        from ray._private.authentication.authentication_token_setup import (
            ensure_token_if_auth_enabled,
        )
        from ray._private.services import canonicalize_bootstrap_address
        from ray._raylet import InnerGcsClient
    except ImportError:
        return
    # As ray.init does for an explicit address: 127.0.0.1 means this node's address, and
    # RAY_AUTH_MODE=token without a token is an error before any request.
    canonical = canonicalize_bootstrap_address(address)

    def ask() -> None:
        ensure_token_if_auth_enabled(None, create_token_if_missing=False)
        InnerGcsClient.standalone(canonical, None, int(timeout * 1000))

    outcome = run_with_timeout(ask, timeout)
    if outcome is None or isinstance(outcome, ray.exceptions.RpcError):
        raise ClusterError(
            f"{address} accepts connections but does not answer as a Ray head (its GCS) "
            f"within {timeout:.0f} s: give the port `ray start --head` printed, on a "
            f"cluster running Ray {ray.__version__}"
        )
    if isinstance(outcome, BaseException):
        raise ClusterError(f"the Ray cluster at {address} refused this machine: "
                           f"{gist(outcome)}{auth_hint(outcome)}") from outcome


def run_with_timeout(call, timeout: float, hold: threading.Event | None = None):
    """call() in a daemon thread: True when it returned, its exception when it raised,
    None when it was still running after `timeout` s (it is left to finish or hang).

    With `hold`, the thread then waits for that event before it ends: Ray starts a local
    runtime's processes with PR_SET_PDEATHSIG, which kills them when the *thread* that
    started them exits, not the process.
    """
    outcome: list = []

    def run() -> None:
        try:
            call()
            outcome.append(True)
        except BaseException as exc:  # handed to the caller's thread
            outcome.append(exc)
        if hold is not None:
            hold.wait()

    thread = threading.Thread(target=run, name="verbatim-ray-connect", daemon=True)
    with _no_sigterm_warning():
        thread.start()
        thread.join(timeout)
    return outcome[0] if outcome else None


class _no_sigterm_warning:
    """ray.init off the main thread logs that it did not install its SIGTERM handler:
    true, and meant (the CLI and the page keep their own), so not worth a warning."""

    def __enter__(self) -> None:
        self._logger = logging.getLogger("ray._private.worker")
        self._filter = lambda record: "SIGTERM handler is not set" not in record.getMessage()
        self._logger.addFilter(self._filter)

    def __exit__(self, *exc: object) -> None:
        self._logger.removeFilter(self._filter)


def auth_hint(exc: BaseException) -> str:
    chain, seen = [], exc
    while seen is not None and len(chain) < 5:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    text = " ".join(str(e) for e in chain)
    if "uthentication" not in text and "auth" not in text.lower():
        return ""
    return (". The cluster uses Ray's token authentication: set RAY_AUTH_MODE=token and "
            "its token in RAY_AUTH_TOKEN (or in the file RAY_AUTH_TOKEN_PATH names, by "
            "default ~/.ray/auth_token); `ray get-auth-token` on the head prints it")


def gist(exc: BaseException) -> str:
    """An error's gist in one line: Ray's str() carries whole remote tracebacks and
    wraps the real cause (a RayTaskError's `cause`, a ConnectionError's __cause__)."""
    while True:
        inner = getattr(exc, "cause", None) or exc.__cause__
        if not isinstance(inner, BaseException) or inner is exc:
            break
        exc = inner
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    # A remote traceback ends with the exception line; a plain message starts with it.
    line = lines[-1] if lines[0].startswith(("ray::", "Traceback")) else lines[0]
    line = line.split(". Ensure that the token")[0]  # Ray's long auth advice: ours is shorter
    name = type(exc).__name__
    return line if line.startswith(name) else f"{name}: {line}"


def quiet_ray() -> None:
    """Our tqdm bar reports progress; Ray's INFO lines would garble it."""
    logging.getLogger("ray").setLevel(logging.WARNING)
