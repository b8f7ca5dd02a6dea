"""`pip install .` works and pins the same versions as requirements.txt."""
import re
import subprocess
import sys
import tomllib
import zipfile

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
    assert {"qa/retriever.py", "qa/__main__.py", "qa/build.py", "qa/index/manifest.py"} <= set(names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "verbatim = qa.serve.cli:run" in zipfile.ZipFile(wheel).read(entry_points).decode()
