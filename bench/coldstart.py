"""Cold start on the seed corpus: process start to first answer, and to the page being ready.

"first answer" runs `python -m qa ask QUESTION` (a fresh interpreter each time, index
already built) and times it until the process has printed the answer and exited; a second
table splits one start into its parts (imports, model load, index open, first answer).
"page ready" starts `python app.py` on a free local port and times it until the page
answers HTTP 200, then stops that process. The OS file cache is warm (runs after the
first), as it is for a user who has run Verbatim before; the first run is shown apart.

    python bench/coldstart.py
    python bench/coldstart.py --runs 5 --no-page
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from common import (  # noqa: I001
    RESULTS, ROOT, SEED_CORPUS, SEED_QUESTIONS, load_average, median, read_jsonl,
    save_result, table,
)

PARTS = r"""
import time, sys
t0 = time.perf_counter()
from qa.config import Settings
from qa.retriever import Retriever
t1 = time.perf_counter()
from qa.embed import load_question_encoder
settings = Settings(index_dir=sys.argv[1])
encoder = load_question_encoder(settings)  # the exported ONNX model when the index has one
t2 = time.perf_counter()
retriever = Retriever.open(settings, encoder)
t3 = time.perf_counter()
retriever.answer(sys.argv[2])
t4 = time.perf_counter()
retriever.answer(sys.argv[2] + " again")
t5 = time.perf_counter()
print("PARTS", t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, int("torch" in sys.modules))
"""


def env() -> dict[str, str]:
    out = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1",
               GRADIO_ANALYTICS_ENABLED="False")
    out["PYTHONPATH"] = str(ROOT) + os.pathsep + out.get("PYTHONPATH", "")
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ask_once(index: Path, question: str) -> float:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "qa", "ask", question, "--index", str(index)],
                         capture_output=True, text=True, cwd=ROOT, env=env())
    seconds = time.perf_counter() - start
    if out.returncode != 0 or not out.stdout.strip():
        raise SystemExit(f"qa ask failed: {out.stderr[-2000:]}")
    return seconds


def page_once(index: Path, timeout: float = 120) -> float | None:
    port = free_port()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port), "--index", str(index),
         "--corpus", str(SEED_CORPUS)],
        cwd=ROOT, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        while time.perf_counter() - start < timeout:
            if proc.poll() is not None:
                raise SystemExit(f"app.py exited: {proc.stderr.read()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    if response.status == 200:
                        return time.perf_counter() - start
            except OSError:
                time.sleep(0.05)
        return None
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-page", action="store_true", help="skip app.py")
    args = parser.parse_args()
    question = read_jsonl(SEED_QUESTIONS)[0]["question"]
    index = RESULTS / "seed-index"
    shutil.rmtree(index, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "qa", "index", "-q", "--corpus", str(SEED_CORPUS),
                    "--index", str(index)], check=True, cwd=ROOT, env=env(),
                   stdout=subprocess.DEVNULL)
    print(load_average(), flush=True)

    first = ask_once(index, question)
    asks = [ask_once(index, question) for _ in range(args.runs)]
    parts = []
    for _ in range(args.runs):
        out = subprocess.run([sys.executable, "-c", PARTS, str(index), question],
                             capture_output=True, text=True, cwd=ROOT, env=env())
        line = [x for x in out.stdout.splitlines() if x.startswith("PARTS")]
        if not line:
            raise SystemExit(out.stderr[-2000:])
        parts.append([float(v) for v in line[0].split()[1:]])
    pages: list[float] = []
    has_app = (ROOT / "app.py").is_file() and not args.no_page
    if has_app:
        pages = [p for p in (page_once(index) for _ in range(max(1, args.runs // 2))) if p]

    rows = [["`python -m qa ask` (first run)", first, "-", "-"],
            [f"`python -m qa ask` (median of {len(asks)})", median(asks), min(asks), max(asks)]]
    if has_app:
        rows.append([f"`python app.py` to page ready (median of {len(pages)})",
                     median(pages) if pages else float("nan"),
                     min(pages) if pages else float("nan"),
                     max(pages) if pages else float("nan")])
    print()
    print(f"seed corpus; {load_average()}")
    print(table(["cold start", "seconds", "min", "max"], rows))
    names = ["import qa", "load question encoder", "open index", "first answer",
             "second answer"]
    print()
    print("inside one start (median seconds of each part):")
    print(table(names, [[median([p[i] for p in parts]) for i in range(len(names))]]))
    print(f"torch imported to answer: {'yes' if any(p[5] for p in parts) else 'no'}")
    save_result("coldstart", {"first": first, "asks": asks, "parts": parts, "pages": pages})


if __name__ == "__main__":
    main()
