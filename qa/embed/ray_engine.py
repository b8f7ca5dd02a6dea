"""`--engine ray`: an Embedder whose encode runs on a Ray cluster (ray is imported here and
in ray_connect.py only).

The driver (the machine running `python -m qa index`) reads, chunks and counts tokens
with its own copy of the model, exactly as a local build does; only `encode` is shipped:
the texts go, one block per call, to a pool of model actors that load the model once
each. A build keeps its pool for all its passes (passages, then sentences): the actors
start and load the model once per build. An actor that dies is restarted by Ray and its
block sent again. The vectors come back tagged with their row numbers, so the builder
gets them in input order and writes the generation as usual, through the same crash-safe
publish. Ray itself is an optional extra (`pip install .[ray]`).
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.embed import Embedder, ExportsQuestionModel, OnProgress
from qa.embed.ray_connect import (
    CONNECT_SECONDS, auth_hint, gist, handshake, import_ray, probe, quiet_ray,
    resolve_address, run_with_timeout,
)
from qa.errors import ClusterError, ConfigError


ENGINES: tuple[str, ...] = ("local", "ray")
# Texts per actor call: big enough that a call's overhead (~ms) is nothing next to the
# model's work (~1-3 s per 256 texts on one core), small enough to spread a small job
# over every actor and to report progress often.
MAX_BLOCK = 256
MIN_BLOCK = 16
# Ray restarts a model actor that dies (a node lost, a process killed) this many times,
# and sends its unfinished blocks again; past that the build fails with a ClusterError.
ACTOR_RESTARTS = 3


@dataclass(slots=True)
class RayStats:
    """What the cluster did, summed over the encode calls of this embedder."""

    texts: int = 0
    blocks: int = 0
    calls: int = 0
    seconds: float = 0.0
    # Of `seconds`, the waits for each call's first vectors: actors starting, models loading
    # (and the first block). After the first block: the steady rate, texts over seconds.
    startup_seconds: float = 0.0
    steady_texts: int = 0
    steady_seconds: float = 0.0
    # Characters, a proxy for the model's work: the first block holds the longest texts,
    # so texts/s after it would flatter the steady rate.
    chars: int = 0
    steady_chars: int = 0
    # Seconds the actors spent inside the model, summed over actors: chars / busy is the
    # rate of one actor, whatever the start-up and scheduling around it.
    busy_seconds: float = 0.0
    actors: int = 0
    # Model actors started (each loads the model): a build's passes share them.
    actors_started: int = 0
    nodes: set[str] = field(default_factory=set)

    def summary(self, address: str) -> str:
        if not self.calls:
            return f"ray: nothing to embed on the cluster ({address})"
        rate = f", {self.texts / self.seconds:,.1f} texts/s" if self.seconds else ""
        return (f"ray: {self.texts:,} texts embedded on the cluster ({address}) in "
                f"{self.blocks} blocks by {self.actors} actors on {len(self.nodes)} "
                f"node{'s' if len(self.nodes) != 1 else ''}{rate} "
                f"({self.actors_started} model loads)")


class EmbedActor:
    """A model actor: loads the model once, then embeds block after block.

    It calls one embedder method per block (`method`, default "encode"), so a build
    that wants more from the same forward pass only changes which method is named.
    The class lives at module level: Ray ships it by reference, so every node needs
    Verbatim installed (and the same model, which the fingerprint check enforces).
    """

    def __init__(self, settings: Settings, fingerprint: str, method: str = "encode") -> None:
        import ray

        from qa.embed import load_embedder

        self._embedder = load_embedder(settings)
        node = ray.get_runtime_context().get_node_id()
        if self._embedder.fingerprint != fingerprint:
            # Another checkpoint under the same name would give silently different vectors.
            raise ConfigError(
                f"the model on Ray node {node} has fingerprint {self._embedder.fingerprint}, "
                f"but the driver's has {fingerprint}: install the same model on every node"
            )
        self._call = getattr(self._embedder, method)
        self._node = node

    def embed(self, rows: np.ndarray,
              texts: list[str]) -> tuple[np.ndarray, np.ndarray, str, float]:
        """(rows, vectors, this actor's node, seconds inside the model) for one block."""
        started = time.perf_counter()
        vectors = np.asarray(self._call(texts), dtype=np.float32)
        return rows, vectors, self._node, time.perf_counter() - started


def block_size(texts: int, actors: int, most: int = MAX_BLOCK) -> int:
    """Texts per block: at least 4 blocks per actor when there is enough work, so that
    every actor stays busy to the end and a retried block is a small loss."""
    return max(MIN_BLOCK, min(most, math.ceil(texts / max(1, 4 * actors))))


class RayEmbedder:
    """An Embedder that keeps the model metadata and the tokenizer local and runs
    `encode` on a Ray cluster, one block per call to a pool of EmbedActor.

    Each `encode` starts its own pool and ends it, unless a `keep_workers()` block is
    open: then the pool lives until the block ends (a build's passes share it).

    Args:
        local: the driver's embedder: model id, fingerprint, dim, token counts.
        settings: model, precision and batch size, as every actor loads them.
        address: a Ray cluster ("HOST:PORT", "ray://HOST:PORT", "auto"), or None for a
            local Ray runtime of this machine.
        actors: model actors; None means one per CPU the cluster offers.
        cpus_per_actor: CPUs each actor reserves (its torch threads).
    """

    def __init__(self, local: Embedder, settings: Settings, address: str | None = None,
                 actors: int | None = None, cpus_per_actor: float = 1.0,
                 method: str = "encode") -> None:
        if actors is not None and actors <= 0:
            raise ConfigError(f"actors must be > 0, got {actors}")
        if cpus_per_actor <= 0:
            raise ConfigError(f"cpus_per_actor must be > 0, got {cpus_per_actor}")
        self._local = local
        self.model_id, self.fingerprint = local.model_id, local.fingerprint
        self.dim, self.max_tokens = local.dim, local.max_tokens
        # The actors embed in the driver's precision ("auto" resolved here, so machines
        # with and without bf16 instructions make alike vectors); the manifest records it.
        self.precision = local.precision
        # Only what an actor needs to load the same model: no driver paths travel.
        self._actor_settings = Settings(model=settings.model, precision=local.precision,
                                        batch_size=settings.batch_size)
        self.address = address
        self.actors = actors
        self.cpus_per_actor = cpus_per_actor
        self.method = method
        self.stats = RayStats()
        self._started_ray = False
        self._release: threading.Event | None = None
        self._lock = threading.Lock()  # the page may rebuild from two threads
        self._pool: list = []  # model actor handles, while they are kept
        self._keeping = 0

    @property
    def where(self) -> str:
        return self.address or "a local Ray runtime"

    def export_question_model(self, index_dir: Path) -> bool:
        """Questions are embedded locally: the local model exports itself (qa.embed.onnx)."""
        return isinstance(self._local, ExportsQuestionModel) and \
            self._local.export_question_model(index_dir)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._local.count_tokens(texts)

    def take_stats(self) -> RayStats:
        """What the cluster did since the last call (one build's worth, for its summary)."""
        stats, self.stats = self.stats, RayStats()
        return stats

    def connect(self) -> None:
        """Join the cluster (or start a local runtime) once; later calls do nothing.

        Raises:
            ClusterError: unreachable, refused (e.g. a wrong token), or too slow to answer.
        """
        ray = import_ray()
        if ray.is_initialized():
            return
        if self.address is not None:
            probe(self.address)
            handshake(self.address)
        kwargs = dict(log_to_driver=False, logging_level=logging.WARNING,
                      namespace="verbatim")
        if self.address is None:
            # Ray's defaults for a new local runtime stand, token authentication included.
            kwargs.update(address="local", include_dashboard=False)
        else:
            kwargs.update(address=self.address)
        # The thread that starts a local runtime must live as long as it (see
        # run_with_timeout); one that joins a cluster starts no process and may end.
        self._release = threading.Event() if self.address is None else None
        outcome = run_with_timeout(lambda: ray.init(**kwargs), CONNECT_SECONDS,
                                    hold=self._release)
        if outcome is None:
            raise ClusterError(
                f"the Ray cluster at {self.where} did not accept a connection within "
                f"{CONNECT_SECONDS:.0f} s: is it a Ray head's GCS port (`ray start --head` "
                f"prints it), running Ray {ray.__version__}?"
            )
        if isinstance(outcome, BaseException):
            raise ClusterError(f"could not join the Ray cluster at {self.where}: "
                               f"{gist(outcome)}{auth_hint(outcome)}") from outcome
        self._started_ray = True
        quiet_ray()

    def _pool_size(self, blocks: int) -> int:
        import ray

        if self.actors is not None:
            wanted = self.actors
        else:
            cpus = ray.cluster_resources().get("CPU", 1.0)
            wanted = max(1, int(cpus // self.cpus_per_actor))
        return max(1, min(wanted, blocks))

    @contextmanager
    def keep_workers(self) -> Iterator[None]:
        """Keep the model actors between encode calls until the block ends (then they
        stop and the cluster's CPUs are free): a build's passes load the model once."""
        with self._lock:
            self._keeping += 1
        try:
            yield
        finally:
            with self._lock:
                self._keeping -= 1
                if not self._keeping:
                    self._end_pool()

    def _actor_pool(self, size: int) -> list:
        """The kept actors, with more started if this call has work for more."""
        ray = import_ray()
        if len(self._pool) < size:
            actor_class = ray.remote(EmbedActor).options(
                num_cpus=self.cpus_per_actor, max_restarts=ACTOR_RESTARTS,
                max_task_retries=ACTOR_RESTARTS)
            for _ in range(size - len(self._pool)):
                self._pool.append(actor_class.remote(
                    self._actor_settings, self.fingerprint, self.method))
                self.stats.actors_started += 1
        return self._pool

    def _end_pool(self) -> None:
        if self._pool:
            ray = import_ray()
            for actor in self._pool:
                ray.kill(actor)
            self._pool = []

    def encode(self, texts: Sequence[str], on_progress: OnProgress | None = None) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            try:
                return self._encode(texts, on_progress)
            finally:
                if not self._keeping:
                    self._end_pool()

    def _encode(self, texts: list[str], on_progress: OnProgress | None) -> np.ndarray:
        self.connect()
        ray = import_ray()
        from ray.util import ActorPool

        started = time.perf_counter()
        # Longest first, as the local engine does, so each block holds texts of nearly
        # one length and little compute goes to padding; `rows` puts them back in order.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        actors = self._pool_size(math.ceil(len(texts) / MIN_BLOCK))
        size = block_size(len(texts), actors)
        blocks = [(order[i:i + size], [texts[j] for j in order[i:i + size]])
                  for i in range(0, len(texts), size)]
        pool = self._actor_pool(min(actors, len(blocks)))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        seen = np.zeros(len(texts), dtype=bool)
        done = first_rows = first_chars = 0
        first = last = started
        lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
        try:
            results = ActorPool(pool).map_unordered(
                lambda actor, block: actor.embed.remote(*block), blocks)
            for rows, vectors, node, busy in results:
                last = time.perf_counter()
                rows = np.asarray(rows, dtype=np.int64)
                if not done:
                    first, first_rows, first_chars = last, len(rows), int(lengths[rows].sum())
                out[rows] = vectors
                seen[rows] = True
                done += len(rows)
                self.stats.nodes.add(str(node))
                self.stats.busy_seconds += float(busy)
                self.stats.blocks += 1
                if on_progress:
                    on_progress(min(done, len(texts)), len(texts))
        except ray.exceptions.RayError as exc:
            self._end_pool()  # a pool that failed is not reused
            raise ClusterError(
                f"embedding on the Ray cluster at {self.where} failed: {gist(exc)}"
            ) from exc
        if done != len(texts) or not seen.all():
            raise ClusterError(
                f"the Ray cluster at {self.where} returned {done} vectors for "
                f"{len(texts)} texts ({int((~seen).sum())} missing)"
            )
        self.stats.texts += len(texts)
        self.stats.calls += 1
        self.stats.startup_seconds += first - started
        self.stats.steady_texts += len(texts) - first_rows
        self.stats.steady_seconds += last - first
        self.stats.chars += int(lengths.sum())
        self.stats.steady_chars += int(lengths.sum()) - first_chars
        self.stats.actors = max(self.stats.actors, len(pool))
        self.stats.seconds += time.perf_counter() - started
        return out

    def close(self) -> None:
        """Leave the cluster (and stop the local runtime, if this process started one)."""
        with self._lock:
            self._end_pool()
        if self._started_ray:
            import ray

            ray.shutdown()
            self._started_ray = False
        if self._release is not None:
            self._release.set()


def add_engine_options(parser) -> None:
    """--engine, --ray-address and --ray-actors, for `qa index` and app.py."""
    parser.add_argument("--engine", choices=ENGINES, default="local",
                        help="where passages are embedded: this machine (default) or a Ray "
                        "cluster (needs `pip install .[ray]`)")
    parser.add_argument("--ray-address", metavar="HOST:PORT",
                        help="the Ray cluster's head (default: RAY_ADDRESS, else a local Ray "
                        "runtime); with --engine ray")
    parser.add_argument("--ray-actors", type=int, metavar="N",
                        help="model actors on the cluster (default: one per CPU)")


def load_ray_embedder(settings: Settings, address: str | None = None,
                      actors: int | None = None, local: Embedder | None = None) -> RayEmbedder:
    """The `--engine ray` embedder: checks Ray is installed and the cluster answers (and
    accepts our token) before loading the model, so a wrong setup fails in seconds.

    Raises:
        ConfigError: Ray is not installed (the message says how to install it).
        ClusterError: the cluster's address does not answer, or refuses us.
    """
    import_ray()
    address = resolve_address(address)
    if address is not None:
        probe(address)
        handshake(address)
    if local is None:
        from qa.embed import load_embedder

        local = load_embedder(settings)
    return RayEmbedder(local, settings, address=address, actors=actors)
