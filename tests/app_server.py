"""Helpers for the page tests: run `python app.py` (or `verbatim serve`) on a free local port
over a tmp corpus."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED_CORPUS = ROOT / "corpus"
ARTIFACTS = ROOT / "tests" / "artifacts"
# The machine is shared and slow at times: model load + seed index build can take a while.
START_TIMEOUT = 240
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class AppServer:
    """A running app.py: its URL, folders and process (see `start_app`)."""

    url: str
    corpus: Path
    index: Path
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(15)


def start_app(root: Path, extra_files: dict[str, str] | None = None,
              env: dict[str, str | None] | None = None, use_port_flag: bool = True,
              extra_args: tuple[str, ...] = (),
              command: Sequence[str] = (sys.executable, str(ROOT / "app.py"))) -> AppServer:
    """Copy the seed corpus (plus `extra_files`) under `root` and serve it with no index yet.

    The app builds the index itself at start-up, as `python app.py` does on a fresh clone.
    `command` starts it (e.g. an installed `verbatim serve`); it runs in `root`. An `env`
    value of None removes that variable.
    """
    corpus, index = root / "corpus", root / "index"
    shutil.copytree(SEED_CORPUS, corpus)
    for name, text in (extra_files or {}).items():
        (corpus / name).write_text(text, encoding="utf-8")
    port = free_port()
    environment = {
        **os.environ, "VERBATIM_CORPUS": str(corpus), "VERBATIM_INDEX": str(index),
        "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1", "PYTHONUNBUFFERED": "1", **(env or {}),
    }
    environment = {key: value for key, value in environment.items() if value is not None}
    args = [*command, "--host", "127.0.0.1", *extra_args]
    if use_port_flag:
        args += ["--port", str(port)]
    else:
        environment["VERBATIM_PORT"] = str(port)
    log = root / "app.log"
    with log.open("wb") as out:
        process = subprocess.Popen(args, cwd=root, env=environment, stdout=out,
                                   stderr=subprocess.STDOUT)
    server = AppServer(f"http://127.0.0.1:{port}/", corpus, index, process, log)
    try:
        wait_ready(server)
    except BaseException:
        server.stop()
        raise
    return server


def wait_ready(server: AppServer, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"app.py exited with {server.process.returncode}:\n"
                               f"{server.output()}")
        if "Verbatim is ready" in server.output():
            try:
                with urllib.request.urlopen(server.url, timeout=10) as response:
                    if response.status == 200:
                        return
            except urllib.error.HTTPError as exc:
                if exc.code in (401, 403):  # login required: it is serving
                    return
            except OSError:
                pass
        time.sleep(0.5)
    raise TimeoutError(f"app.py not ready after {timeout} s:\n{server.output()}")


def ask(page, question: str):
    """Type and send a question; the locator of the answer it got."""
    from playwright.sync_api import expect

    answers = page.locator("#chat .vb-answer")
    before = answers.count()
    page.fill("#question textarea", question)
    page.click("#ask")
    expect(answers).to_have_count(before + 1)
    return answers.nth(before)


@contextmanager
def chromium_page(url: str, timeout_ms: int, height: int = 1000) -> Iterator:
    """A headless Chromium tab on the page at `url`, its question box ready; the tab's
    `js_errors` collects the page's uncaught errors."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=timeout_ms)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1100, "height": height})
            context.set_default_timeout(timeout_ms)
            tab = context.new_page()
            tab.js_errors = []
            tab.on("pageerror", lambda e: tab.js_errors.append(str(e)))
            tab.goto(url)
            tab.wait_for_selector("#question textarea")
            yield tab
        finally:
            browser.close()
