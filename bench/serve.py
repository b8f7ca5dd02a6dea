"""The JSON API under load: answers/s and p50/p99 with 1, 8 and 32 concurrent clients
against `python app.py` on 127.0.0.1, next to answering in-process in the same run.

Builds the seed corpus (or squad-dev with --squad) into a temporary index, starts app.py
on a free local port with a login (HTTP Basic, as an integrator would call it), and
measures, one after the other so they do not compete for the CPU:
- in-process: `Retriever.answer` in a loop, 1 thread (the reference rate) and 8 threads;
- the JSON API: N clients, each on its own keep-alive connection, POST /api/ask in a loop;
- the page's Gradio /ask through gradio_client with 8 clients (what integrators had).
Each level runs --seconds after a short warm-up, and the whole set --rounds times,
interleaved, so a burst of load from elsewhere on a shared machine hits every row alike;
the table shows each row's median over the rounds, and the CPU time per answer (of this
process in-process, of the server's process for the API), which load from elsewhere
disturbs less than rates do. The server is stopped at the end, also on errors or Ctrl-C.
Questions: the seed dev questions (answerable, paraphrased, off-topic), round robin.

    python bench/serve.py
    python bench/serve.py --seconds 5 --rounds 1 --clients 1 8 --no-gradio
"""
from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from common import (  # noqa: I001
    ROOT, SEED_CORPUS, SHARED, SQUAD_ARTICLES, load_average, median, percentile, questions,
    read_jsonl, save_result, table,
)

USER, PASSWORD = "bench", "bench-password"
START_TIMEOUT = 300
EVAL = SHARED / "eval"


def seed_questions() -> list[str]:
    found = []
    for name in ("seed_dev.jsonl", "seed_dev_paraphrased.jsonl", "seed_dev_unanswerable.jsonl"):
        if (EVAL / name).exists():
            found += [row["question"] for row in read_jsonl(EVAL / name)]
    from qa.serve.ui import EXAMPLES

    return found or list(EXAMPLES)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`python app.py` on a free 127.0.0.1 port over the prepared corpus and index."""

    def __init__(self, corpus: Path, index: Path, log: Path) -> None:
        self.port = free_port()
        self.log = log
        env = {**os.environ, "VERBATIM_CORPUS": str(corpus), "VERBATIM_INDEX": str(index),
               "VERBATIM_AUTH": f"{USER}:{PASSWORD}", "GRADIO_ANALYTICS_ENABLED": "False",
               "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
               "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port",
                 str(self.port)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}/"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"app.py exited:\n{self.log.read_text(errors='replace')}")
            if "Verbatim is ready" in self.log.read_text(errors="replace"):
                return
            time.sleep(0.3)
        raise TimeoutError(f"app.py not ready after {START_TIMEOUT} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(20)


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of a process (this one if None)."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_clients(n: int, seconds: float, warmup: float, work, pid: int | None = None) -> dict:
    """`work(client, i)` in a loop on `n` threads for warmup + seconds. Answers/s counts
    the answers completed in the timed window; latencies are those of the requests that
    started and ended in it; CPU is the process's over the window (work in flight at its
    two ends roughly cancels out)."""
    latencies: list[list[float]] = [[] for _ in range(n)]
    completed = [0] * n
    errors = [0] * n
    start_at = time.perf_counter() + warmup
    stop_at = start_at + seconds

    def loop(client: int) -> None:
        i = client
        while True:
            began = time.perf_counter()
            if began >= stop_at:
                return
            try:
                work(client, i)
            except Exception:  # noqa: BLE001  counted, and the run goes on
                errors[client] += 1
            done = time.perf_counter()
            if start_at <= done <= stop_at:
                completed[client] += 1
                if began >= start_at:
                    latencies[client].append((done - began) * 1000)
            i += n

    threads = [threading.Thread(target=loop, args=(c,), daemon=True) for c in range(n)]
    for thread in threads:
        thread.start()
    while time.perf_counter() < start_at:
        time.sleep(0.01)
    cpu = cpu_seconds(pid)
    while time.perf_counter() < stop_at:
        time.sleep(0.01)
    cpu = cpu_seconds(pid) - cpu
    for thread in threads:
        thread.join(seconds + warmup + 120)
    every = [x for per in latencies for x in per]
    answers = sum(completed)
    return {"clients": n, "answers": answers, "per_s": answers / seconds,
            "p50": median(every), "p99": percentile(every, 99), "errors": sum(errors),
            "cpu_ms": 1000 * cpu / max(answers, 1)}


def api_worker(server: Server, items: list[str], k: int, mode: str):
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    headers = {"Content-Type": "application/json", "Authorization": f"Basic {token}"}
    local = threading.local()

    def work(client: int, i: int) -> None:
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = http.client.HTTPConnection(
                "127.0.0.1", server.port, timeout=120)
        body = json.dumps({"question": items[i % len(items)], "k": k, "mode": mode})
        try:
            connection.request("POST", "/api/ask", body, headers)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            local.connection = None
            connection.close()
            raise
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {data[:200]!r}")

    return work


def gradio_worker(server: Server, items: list[str], k: int, mode: str, n: int):
    from gradio_client import Client

    clients = [Client(server.url, auth=(USER, PASSWORD), verbose=False,
                      analytics_enabled=False, download_files=False) for _ in range(n)]

    def work(client: int, i: int) -> None:
        clients[client].predict(items[i % len(items)], k, mode, api_name="/ask")

    return work


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="timed seconds per level")
    parser.add_argument("--warmup", type=float, default=1.5)
    parser.add_argument("--rounds", type=int, default=3, help="repeat every row, interleaved")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--mode", default="hybrid")
    parser.add_argument("--squad", action="store_true", help="squad-dev (1,206 passages) and "
                        "its questions instead of the seed article")
    parser.add_argument("--no-gradio", action="store_true", help="skip the Gradio /ask row")
    args = parser.parse_args(argv)

    from qa.config import Settings
    from qa.embed import load_embedder
    from qa.build import build_index
    from qa.retriever import Retriever

    work_dir = Path(tempfile.mkdtemp(prefix="verbatim-serve-"))
    server = None
    try:
        corpus = work_dir / "corpus"
        if args.squad:
            corpus.mkdir()
            shutil.copy(SQUAD_ARTICLES, corpus / SQUAD_ARTICLES.name)
            items = [q["question"] for q in questions(300)]
        else:
            shutil.copytree(SEED_CORPUS, corpus)
            items = seed_questions()
        settings = Settings(corpus_dir=corpus, index_dir=work_dir / "index")
        embedder = load_embedder(settings)
        print(build_index(settings, embedder).summary(), flush=True)
        server = Server(corpus, settings.index_dir, work_dir / "app.log")
        retriever = Retriever.open(settings, embedder)
        retriever.answer(items[0], args.k, mode=args.mode)
        server.wait_ready()

        def in_process(client: int, i: int) -> None:
            retriever.answer(items[i % len(items)], args.k, mode=args.mode)

        api = api_worker(server, items, args.k, args.mode)
        plan = [("in-process `Retriever.answer`", n, in_process, None) for n in (1, 8)]
        plan += [("JSON API `POST /api/ask`", n, api, server.process.pid) for n in args.clients]
        results: dict[tuple[str, int], list[dict]] = {}
        for round_ in range(1, args.rounds + 1):
            for what, n, work, pid in plan:
                result = run_clients(n, args.seconds, args.warmup, work, pid)
                results.setdefault((what, n), []).append(result)
                print(f"round {round_}: {what}, {n} client(s): {result['per_s']:.1f}/s, "
                      f"{result['cpu_ms']:.1f} CPU ms/answer ({load_average()})", flush=True)
        if not args.no_gradio:  # once: it is the old way, for comparison
            work = gradio_worker(server, items, args.k, args.mode, 8)
            result = run_clients(8, args.seconds, args.warmup, work, server.process.pid)
            results[("page `/ask` via gradio_client", 8)] = [result]
            print(f"gradio /ask, 8 clients: {result['per_s']:.1f}/s", flush=True)
        rows = [(what, {key: (median([r[key] for r in runs]) if key != "clients" else n)
                        for key in runs[0]})
                for (what, n), runs in results.items()]
        reference = rows[0][1]["per_s"]
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work_dir, ignore_errors=True)

    headers = ["what", "clients", "answers/s", "p50 ms", "p99 ms", "CPU ms/answer", "errors",
               "vs in-process (1 thread)"]
    body = [[what, r["clients"], round(r["per_s"], 1), round(r["p50"], 1), round(r["p99"], 1),
             round(r["cpu_ms"], 1), int(r["errors"]), f"{r['per_s'] / reference:.2f}x"]
            for what, r in rows]
    corpus_name = "squad-dev" if args.squad else "the seed article"
    print(f"\n{corpus_name}, k={args.k}, mode {args.mode}; medians of {args.rounds} rounds "
          f"of {args.seconds:g} s per row; {load_average()}\n")
    print(table(headers, body))
    path = save_result("serve", {"corpus": corpus_name, "k": args.k, "mode": args.mode,
                                 "seconds": args.seconds, "rounds": args.rounds,
                                 "rows": [{"what": w, **r} for w, r in rows],
                                 "runs": {f"{w} x{n}": runs for (w, n), runs in results.items()}})
    print(f"\nsaved {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
