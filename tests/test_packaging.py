"""`pip install .` gives the whole product, page included, and pins the same versions as
requirements.txt."""
import os
import re
import subprocess
import sys
import tomllib
import zipfile

import pytest

from app_server import start_app
from conftest import ROOT


def pins(lines):
    return {re.split(r"==", line)[0].lower(): line for line in lines if "==" in line}


def test_pyproject_dependencies_are_pinned_like_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = pins(l.strip() for l in (ROOT / "requirements.txt").read_text().splitlines()
                        if l.strip() and not l.startswith("#"))
    for dependency in project["dependencies"]:
        name = dependency.split("==")[0].lower()
        assert requirements.get(name) == dependency, f"{dependency} vs requirements.txt"
    assert "torch==2.13.0" in project["dependencies"]


def test_the_ray_extra_is_pinned_like_requirements():
    """`pip install .[ray]` and CI's requirements.txt install the same Ray."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = pins(l.strip() for l in (ROOT / "requirements.txt").read_text().splitlines()
                        if l.strip() and not l.startswith("#"))
    (ray,) = project["optional-dependencies"]["ray"]
    assert requirements.get(ray.split("==")[0].lower()) == ray
    assert not any(d.lower().startswith("ray") for d in project["dependencies"]), "optional"
    from qa.embed.ray_connect import RAY_REQUIREMENT

    assert RAY_REQUIREMENT == ray, "the install hint names another version"


def test_wheel_has_the_package_and_the_verbatim_command(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = tmp_path.glob("verbatim_qa-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"qa/retriever.py", "qa/__main__.py", "qa/build.py", "qa/index/manifest.py",
            "qa/serve/page.py", "qa/serve/ui.py", "qa/serve/server.py"} <= set(names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "verbatim = qa.serve.cli:run" in zipfile.ZipFile(wheel).read(entry_points).decode()


@pytest.mark.slow
def test_pip_install_into_a_clean_venv_gives_verbatim_serve_and_the_page_answers(tmp_path):
    """The wheel alone, outside the checkout: `verbatim serve` builds the seed index and the
    page answers through its named API. (pip may use its cache; loopback only after that.)"""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(ROOT)],
                             capture_output=True, text=True, timeout=1800)
    assert install.returncode == 0, install.stderr[-3000:]
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run([str(python), "-c", "import qa.serve.ui; print(qa.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert where.stdout.startswith(str(venv)), (where.stdout, where.stderr)

    server = start_app(tmp_path / "site", env={"PYTHONPATH": None, "VIRTUAL_ENV": None},
                       command=(str(venv / "bin" / "verbatim"), "serve"))
    try:
        from gradio_client import Client

        client = Client(server.url, verbose=False, analytics_enabled=False,
                        download_files=False)
        answer = client.predict("What hardware did the US export bans target?", 3, "hybrid",
                                api_name="/ask")
    finally:
        server.stop()
    assert not answer["abstained"] and "Nvidia" in answer["quotes"][0]["text"], answer
