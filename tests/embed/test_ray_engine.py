"""`--engine ray`: builds on a real Ray cluster equal a local build; faults; auth; no Ray.

The cluster tests start Ray nodes on this machine (tests/ray_cluster.py: `ray start` per
node, free ports, their own temp folder, loopback only) and stop exactly those processes.
Every driver is a `python -m qa index` subprocess, so no Ray state lives in pytest.
The index is compared through its on-disk format (docs/ARCHITECTURE.md, "The index on disk").
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import EVAL, ROOT, FakeEmbedder, read_jsonl
from index_helpers import CountingEmbedder, cli_env, copy_index, run_cli, small_corpus
from qa.build import build_index
from qa.config import Settings
from qa.errors import ClusterError, ConfigError
from qa.embed.ray_connect import host_port, probe, resolve_address
from qa.embed.ray_engine import MAX_BLOCK, MIN_BLOCK, block_size

SQUAD = EVAL / "squad-dev" / "articles.jsonl"
# Three of the shortest squad-dev articles: two to build, one to add.
BASE_ARTICLES = ("Construction", "Victoria_(Australia)")
NEW_ARTICLE = "Jacksonville,_Florida"
TIMING_FIELDS = ("built_at", "build_seconds")
RAY_LINE = re.compile(r"ray: ([\d,]+) texts embedded on the cluster \((.+?)\) in (\d+) blocks "
                      r"by (\d+) actors on (\d+) nodes?.*?\((\d+) model loads\)")
PROGRESS = re.compile(r"embed:.*?\|\s*(\d+)/(\d+)")


# -- what a built index holds --------------------------------------------------------------
def snapshot(index_dir: Path) -> dict:
    """The live generation as files hold it: manifest, rows, vectors."""
    name = (index_dir / "CURRENT").read_text().strip()
    folder = index_dir / name
    conn = sqlite3.connect(f"file:{folder / 'passages.sqlite'}?mode=ro", uri=True)
    try:
        passages = conn.execute(
            'SELECT p.id, p.article_id, p.start, p."end", p.context, p.first_sentence, '
            'p.sentence_count, substr(a.text, p.start + 1, p."end" - p.start) '
            "FROM passages p JOIN articles a ON a.id = p.article_id ORDER BY p.id").fetchall()
        sentences = conn.execute('SELECT id, start, "end" FROM sentences ORDER BY id').fetchall()
        articles = conn.execute("SELECT * FROM articles ORDER BY id").fetchall()
    finally:
        conn.close()
    manifest = json.loads((folder / "manifest.json").read_text())
    return {
        "name": name, "manifest": manifest, "passages": passages, "sentences": sentences,
        "articles": articles,
        "vectors": np.load(folder / "vectors.npy"),
        "sentence_vectors": np.load(folder / "sentence_vectors.npy").astype(np.float32),
    }


def assert_same_index(got: dict, want: dict) -> None:
    """Same passages, ids, texts and manifest (but for build timings); vectors within
    float tolerance (the cluster batches texts differently, so padding differs)."""
    assert got["passages"] == want["passages"]
    assert got["sentences"] == want["sentences"]
    assert got["articles"] == want["articles"]
    assert strip(got["manifest"]) == strip(want["manifest"])
    # Every file has the same size; the bytes may differ only where floats are (vectors,
    # FAISS): the rows and the BM25 files are the same byte for byte.
    assert sizes(got["manifest"]) == sizes(want["manifest"])
    exact = {name: entry for name, entry in want["manifest"]["files"].items()
             if name == "passages.sqlite" or name.startswith("bm25/")}
    assert {name: got["manifest"]["files"][name] for name in exact} == exact
    assert got["vectors"].shape == want["vectors"].shape
    # In fp32 only the summation order differs; bf16 (precision "auto" on a CPU with
    # bf16) rounds each step to 8 bits of mantissa, so batch shapes show in the 4th digit.
    bf16 = want["manifest"]["model"]["precision"] == "bf16"
    np.testing.assert_allclose(got["vectors"], want["vectors"], atol=2e-3 if bf16 else 1e-5)
    cosines = np.sum(got["vectors"] * want["vectors"], axis=1)
    assert cosines.min() > (0.9999 if bf16 else 0.999999), cosines.min()
    # Sentence vectors are stored as float16: one rounding step apart at most.
    np.testing.assert_allclose(got["sentence_vectors"], want["sentence_vectors"],
                               atol=4e-3 if bf16 else 2e-3)


def strip(manifest: dict) -> dict:
    """The manifest but for build timings and file checksums (compared apart)."""
    return {k: v for k, v in manifest.items() if k not in (*TIMING_FIELDS, "files")}


def sizes(manifest: dict) -> dict:
    return {name: entry["size"] if isinstance(entry, dict) else entry
            for name, entry in manifest["files"].items()}


def ray_line(stdout: str) -> dict:
    match = RAY_LINE.search(stdout)
    assert match, f"no ray summary line in: {stdout!r}"
    texts, address, blocks, actors, nodes, loads = match.groups()
    return {"texts": int(texts.replace(",", "")), "address": address, "blocks": int(blocks),
            "actors": int(actors), "nodes": int(nodes), "model_loads": int(loads)}


def write_articles(path: Path, ids: tuple[str, ...]) -> None:
    rows = {row["id"]: row for row in read_jsonl(SQUAD)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(rows[i]) + "\n" for i in ids), encoding="utf-8")


def ray_index_cli(settings: Settings, address: str, *extra: str, env: dict | None = None,
                  timeout: float = 600) -> subprocess.CompletedProcess:
    return run_cli(["index", "--engine", "ray", "--ray-address", address, "-q",
                    "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir),
                    *extra], timeout=timeout, **(env or {}))


def start_ray_build(settings: Settings, address: str, env: dict) -> subprocess.Popen:
    """A ray build in the background with its progress bar on stderr (one line per update:
    text-mode pipes turn tqdm's carriage returns into newlines)."""
    return subprocess.Popen(
        [sys.executable, "-m", "qa", "index", "--engine", "ray", "--ray-address", address,
         "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)],
        cwd=ROOT, env=cli_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_progress(process: subprocess.Popen, timeout: float = 300) -> tuple[int, int]:
    """Block until the build reports some (not all) texts embedded: (done, total).
    A thread goes on draining stderr, so the build never blocks on a full pipe."""
    found: list[tuple[int, int]] = []
    seen: list[str] = []
    event = threading.Event()

    def read() -> None:
        for line in process.stderr:
            seen.append(line)
            match = PROGRESS.search(line)
            if match and 0 < int(match.group(1)) < int(match.group(2)) and not found:
                found.append((int(match.group(1)), int(match.group(2))))
                event.set()
        event.set()

    threading.Thread(target=read, daemon=True).start()
    event.wait(timeout)
    assert found, f"no partial embed progress; stderr: {''.join(seen)[-3000:]}"
    return found[0]


def wait_until_no_actors(cluster, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while cluster.actor_pids():
        assert time.monotonic() < deadline, f"model actors still running: {cluster.actor_pids()}"
        time.sleep(0.5)


# -- pure logic ----------------------------------------------------------------------------
def test_the_address_comes_from_the_flag_then_ray_address_else_a_local_runtime():
    assert resolve_address("10.0.0.5:6379", {"RAY_ADDRESS": "10.0.0.9:6379"}) == "10.0.0.5:6379"
    assert resolve_address(None, {"RAY_ADDRESS": "10.0.0.9:6379"}) == "10.0.0.9:6379"
    assert resolve_address(None, {}) is None
    assert resolve_address("local", {"RAY_ADDRESS": "10.0.0.9:6379"}) is None
    assert resolve_address(None, {"RAY_ADDRESS": " "}) is None


def test_addresses_are_parsed_or_refused_by_name():
    assert host_port("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert host_port("ray://head.example:10001") == ("head.example", 10001)
    assert host_port("[::1]:6379") == ("::1", 6379)
    assert host_port("auto") is None
    for bad in ("head", "head:port", "head:0", ":6379", "head:70000"):
        with pytest.raises(ConfigError, match=re.escape(repr(bad))):
            host_port(bad)


def test_blocks_keep_every_actor_busy_and_stay_bounded():
    assert block_size(10, 2) == MIN_BLOCK
    assert block_size(800, 2) == 100  # 4 blocks per actor
    assert block_size(10_000_000, 64) == MAX_BLOCK


def test_the_ray_embedder_keeps_the_local_model_metadata_and_checks_its_arguments():
    from qa.embed.ray_engine import RayEmbedder

    local = FakeEmbedder()
    local.precision = "bf16"  # as the driver resolved "auto" on a CPU with bf16
    embedder = RayEmbedder(local, Settings(precision="auto"), address="10.0.0.5:6379")
    assert (embedder.model_id, embedder.fingerprint, embedder.dim, embedder.max_tokens) == \
        (local.model_id, local.fingerprint, local.dim, local.max_tokens)
    # The actors embed in the driver's resolved precision, whatever their own CPUs have.
    assert embedder.precision == "bf16" and embedder._actor_settings.precision == "bf16"
    assert embedder.count_tokens(["two words"]) == [2]
    assert embedder.encode([]).shape == (0, local.dim)  # nothing to send: no cluster needed
    assert embedder.take_stats().summary("x") == "ray: nothing to embed on the cluster (x)"
    for bad in ({"actors": 0}, {"cpus_per_actor": 0}):
        with pytest.raises(ConfigError, match="must be > 0, got 0"):
            RayEmbedder(local, Settings(), **bad)


def test_an_address_nobody_listens_on_fails_at_once():
    port = _free_port()
    started = time.monotonic()
    with pytest.raises(ClusterError, match=f"cannot reach the Ray cluster at 127.0.0.1:{port}"):
        probe(f"127.0.0.1:{port}")
    assert time.monotonic() - started < 2


def test_a_port_that_is_not_a_ray_head_is_a_clear_error_in_seconds(tmp_path):
    settings = small_corpus(tmp_path)
    with _silent_server() as address:  # a subprocess: Ray's client state stays out of pytest
        started = time.monotonic()
        result = ray_index_cli(settings, address, timeout=120)
        took = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    assert f"error: {address} accepts connections but does not answer as a Ray head" \
        in result.stderr
    assert took < 40, f"{took:.1f} s to report a port that is not Ray's"


# -- the command line without a cluster ------------------------------------------------------
def test_unreachable_cluster_is_a_clear_error_in_seconds(tmp_path):
    settings = small_corpus(tmp_path)
    port = _free_port()
    for extra, env in (((f"--ray-address=127.0.0.1:{port}",), {}),
                       ((), {"RAY_ADDRESS": f"127.0.0.1:{port}"})):
        started = time.monotonic()
        result = run_cli(["index", "--engine", "ray", *extra, "--corpus",
                          str(settings.corpus_dir), "--index", str(settings.index_dir)],
                         timeout=60, **env)
        took = time.monotonic() - started
        assert result.returncode == 2, result.stderr
        assert f"error: cannot reach the Ray cluster at 127.0.0.1:{port}" in result.stderr
        assert "Traceback" not in result.stderr
        assert took < 30, f"{took:.1f} s to report an unreachable cluster"
    assert not settings.index_dir.exists() or not any(settings.index_dir.glob("gen-*"))


NO_RAY = """
import sys
sys.modules["ray"] = None  # as if Ray were not installed: `import ray` fails
from qa.serve.cli import main
code = main(sys.argv[1:])
print("ray imported:", any(name == "ray" or name.startswith("ray.") for name in sys.modules
                           if sys.modules[name] is not None))
sys.exit(code)
"""


@pytest.mark.slow
def test_without_ray_the_local_engine_builds_and_the_ray_engine_says_how_to_install(tmp_path):
    settings = small_corpus(tmp_path)
    args = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), "-q"]
    run = lambda *extra: subprocess.run(  # noqa: E731
        [sys.executable, "-c", NO_RAY, "index", *args, *extra], cwd=ROOT, env=cli_env(),
        capture_output=True, text=True, timeout=300)
    missing = run("--engine", "ray")
    assert missing.returncode == 2
    assert "--engine ray needs Ray" in missing.stderr
    assert "pip install 'verbatim-qa[ray]'" in missing.stderr and "ray==" in missing.stderr
    local = run()  # --engine local is the default
    assert local.returncode == 0, local.stderr
    assert "gen-000001: 3 articles" in local.stdout and "ray imported: False" in local.stdout


@pytest.mark.slow
def test_without_an_address_a_local_ray_runtime_builds_and_goes_away(tmp_path, real_embedder):
    settings = small_corpus(tmp_path / "work")
    env = cli_env(HOME=str(tmp_path / "home"))  # Ray may write its default token there
    for name in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "qa", "index", "--engine", "ray", "-q", "--corpus",
         str(settings.corpus_dir), "--index", str(settings.index_dir)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    assert ray_line(stdout)["address"] == "a local Ray runtime"
    from ray_cluster import session_members

    deadline = time.monotonic() + 120  # the runtime this build started ends with it
    while session_members([process.pid]):
        assert time.monotonic() < deadline, f"left running: {session_members([process.pid])}"
        time.sleep(0.5)
    for session in Path("/tmp/ray").glob(f"session_*_{process.pid}"):
        shutil.rmtree(session, ignore_errors=True)  # its logs: Ray leaves them behind
    local = settings.replace(index_dir=tmp_path / "local-index")
    build_index(local, real_embedder)
    want = snapshot(local.index_dir)
    assert_same_index(snapshot(settings.index_dir), want)


# -- the page --------------------------------------------------------------------------------
def test_the_page_rebuilds_with_the_engine_it_was_started_with(tmp_path):
    from qa.serve.page import Page
    from qa.serve.server import parser

    assert parser().parse_args([]).engine == "local"
    args = parser().parse_args(["--engine", "ray", "--ray-address", "10.0.0.5:6379"])
    assert (args.engine, args.ray_address) == ("ray", "10.0.0.5:6379")

    settings = small_corpus(tmp_path)
    query, cluster = FakeEmbedder(), FakeEmbedder()
    note, *_ = Page(settings, query).rebuild()
    assert note.startswith("Rebuilt") and query.encoded  # default: the local engine
    (settings.corpus_dir / "delta.txt").write_text("Delta pier\n\nThe pier reopened in May.")
    query.encoded.clear()
    note, *_ = Page(settings, query, build_embedder=cluster).rebuild()
    assert note.startswith("Rebuilt") and "1 added" in note
    assert cluster.encoded and not query.encoded


# -- a real two-node cluster ------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from ray_cluster import LocalRayCluster

    ray_cluster = LocalRayCluster(tmp_path_factory.mktemp("ray"), nodes=2, cpus=1,
                                  auth_mode="disabled", env={"PYTHONPATH": str(ROOT)})
    ray_cluster.start()
    yield ray_cluster
    left = ray_cluster.stop()
    assert left == [], f"Ray processes left running: {left}"


@pytest.fixture(scope="module")
def squad(tmp_path_factory, real_embedder) -> Settings:
    """Two squad-dev articles built locally: the reference a cluster build must equal."""
    root = tmp_path_factory.mktemp("squad")
    write_articles(root / "corpus" / "articles.jsonl", BASE_ARTICLES)
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "local-index")
    build_index(settings, real_embedder)
    return settings


@pytest.fixture(scope="module")
def ray_built(cluster, squad, tmp_path_factory) -> tuple[Settings, subprocess.CompletedProcess]:
    settings = squad.replace(index_dir=tmp_path_factory.mktemp("ray-built") / "index")
    return settings, ray_index_cli(settings, cluster.address, env=cluster.client_env())


@pytest.mark.slow
def test_a_cluster_build_equals_a_local_build(ray_built, squad, cluster):
    settings, result = ray_built
    assert result.returncode == 0, result.stderr
    assert "gen-000001: 2 articles" in result.stdout
    got, want = snapshot(settings.index_dir), snapshot(squad.index_dir)
    assert_same_index(got, want)
    line = ray_line(result.stdout)
    build = got["manifest"]["build"]
    # Everything the build embedded went through the cluster, and nothing else did.
    pooled = got["manifest"]["model"]["passage_vectors"] == "pooled"
    assert line["texts"] == build["embedded_sentences"] + (0 if pooled else
                                                            build["embedded_passages"])
    assert line["address"] == cluster.address and 1 <= line["nodes"] <= 2
    # Every pass of the build ran on the same actors: one model load each.
    assert line["model_loads"] == line["actors"] <= 2
    wait_until_no_actors(cluster)  # the build ended its actors


@pytest.mark.slow
def test_a_killed_worker_is_retried_and_the_build_still_matches(cluster, squad, tmp_path):
    settings = squad.replace(index_dir=tmp_path / "index")
    process = start_ray_build(settings, cluster.address, cluster.client_env())
    try:
        done, total = wait_for_progress(process)
        deadline = time.monotonic() + 60
        while not (actors := cluster.actor_pids(1) or cluster.actor_pids()):
            assert time.monotonic() < deadline, "no model actor to kill"
            time.sleep(0.2)
        victim = actors[0]
        os.kill(victim, signal.SIGKILL)
        stdout = process.stdout.read()  # until the build exits (stderr is being drained)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, f"build failed after a worker was killed at {done}/{total}"
    assert victim not in cluster.actor_pids()
    assert_same_index(snapshot(settings.index_dir), snapshot(squad.index_dir))
    assert ray_line(stdout)["texts"] == total


@pytest.mark.slow
def test_a_killed_driver_leaves_the_live_index_then_only_the_new_article_is_embedded(
        cluster, squad, ray_built, real_embedder, tmp_path):
    ray_settings = copy_index(ray_built[0].replace(corpus_dir=squad.corpus_dir), tmp_path / "ray")
    write_articles(ray_settings.corpus_dir / "new.jsonl", (NEW_ARTICLE,))
    index_before = {p.name: p.stat().st_mtime_ns for p in ray_settings.index_dir.iterdir()}
    manifest_before = (ray_settings.index_dir / "gen-000001" / "manifest.json").read_bytes()

    # SIGKILL the driver while the cluster embeds: nothing of the new build is published.
    process = start_ray_build(ray_settings, cluster.address, cluster.client_env())
    try:
        wait_for_progress(process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    after = {p.name: p.stat().st_mtime_ns for p in ray_settings.index_dir.iterdir()}
    assert after == index_before  # same entries, none touched; no temp generation
    assert (ray_settings.index_dir / "gen-000001" / "manifest.json").read_bytes() \
        == manifest_before
    assert snapshot(ray_settings.index_dir)["name"] == "gen-000001"
    # Ray ends a dead driver's actors; the cluster is free for the next build.
    wait_until_no_actors(cluster)

    # The same step on the local engine: what an incremental build must embed.
    local_settings = copy_index(squad, tmp_path / "local")
    write_articles(local_settings.corpus_dir / "new.jsonl", (NEW_ARTICLE,))
    counting = CountingEmbedder(real_embedder)
    local_report = build_index(local_settings, counting)
    assert (local_report.added, local_report.kept) == (1, 2)

    result = ray_index_cli(ray_settings, cluster.address, env=cluster.client_env())
    assert result.returncode == 0, result.stderr
    assert "1 added, 0 changed, 0 removed, 2 kept" in result.stdout
    assert ray_line(result.stdout)["texts"] == len(counting.encoded)
    got, want = snapshot(ray_settings.index_dir), snapshot(local_settings.index_dir)
    new_passages = [p for p in got["passages"] if p[1] == f"new.jsonl#{NEW_ARTICLE}"]
    assert got["manifest"]["build"]["embedded_passages"] == len(new_passages)
    # Equal to the local incremental build, corpus folder aside (each copy has its own).
    want["manifest"]["corpus_dir"] = got["manifest"]["corpus_dir"]
    assert_same_index(got, want)


@pytest.mark.slow
def test_token_authentication(tmp_path):
    """A cluster with RAY_AUTH_MODE=token: builds with its token; without it, a clear
    error in seconds that says which variables to set."""
    from ray_cluster import LocalRayCluster

    settings = small_corpus(tmp_path / "work")
    with LocalRayCluster(tmp_path / "ray", nodes=1, cpus=1, auth_mode="token",
                         env={"PYTHONPATH": str(ROOT)}) as secured:
        wrong = dict(secured.client_env(), RAY_AUTH_TOKEN="0" * 32)
        unset = {"RAY_AUTH_MODE": "disabled", "RAY_AUTH_TOKEN": ""}
        for env in (wrong, unset):
            started = time.monotonic()
            refused = ray_index_cli(settings, secured.address, env=env, timeout=120)
            assert refused.returncode == 2, refused.stderr
            assert f"error: the Ray cluster at {secured.address} refused this machine" \
                in refused.stderr
            assert "RAY_AUTH_MODE=token" in refused.stderr and "RAY_AUTH_TOKEN" in refused.stderr
            assert time.monotonic() - started < 30
        assert not settings.index_dir.exists() or not any(settings.index_dir.glob("gen-*"))

        built = ray_index_cli(settings, secured.address, env=secured.client_env())
        assert built.returncode == 0, built.stderr
        assert "gen-000001: 3 articles" in built.stdout
        assert ray_line(built.stdout)["address"] == secured.address


# -- helpers --------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _silent_server:
    """A TCP port that accepts connections and never answers (not a Ray head)."""

    def __enter__(self) -> str:
        self._sock = socket.socket()
        # 127.0.0.2: Ray rewrites 127.0.0.1 to the machine's address, where we don't listen.
        self._sock.bind(("127.0.0.2", 0))
        self._sock.listen(16)
        self._held: list[socket.socket] = []
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()
        return f"127.0.0.2:{self._sock.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                self._held.append(self._sock.accept()[0])
            except OSError:
                continue

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for conn in self._held:
            conn.close()
        self._sock.close()

