"""The Binder environment (environment.yml) and the package metadata (pyproject.toml) pin the same things."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[;]", req, maxsplit=1)[0].strip().lower().replace("_", "-")


def _pyproject_requirements() -> dict[str, str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"])
    # Binder needs what the book, the exercises and nbgrader need; the test-only tools stay out.
    reqs += [r for r in meta["optional-dependencies"]["dev"] if _name(r) not in {"pytest", "pytest-timeout", "pytest-xdist", "playwright", "pyyaml"}]
    return {_name(r): r.replace(" ", "") for r in reqs}


def _environment_requirements() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {_name(r): r.replace(" ", "") for r in pip_section if not r.startswith("-")}


def test_environment_yml_matches_pyproject() -> None:
    ours, binder = _pyproject_requirements(), _environment_requirements()
    assert set(binder) == set(ours), (
        f"only in environment.yml: {sorted(set(binder) - set(ours))}; "
        f"only in pyproject.toml: {sorted(set(ours) - set(binder))}"
    )
    different = {k: (ours[k], binder[k]) for k in ours if ours[k] != binder[k]}
    assert not different, f"pins differ (pyproject, environment.yml): {different}"


def test_binder_installs_python_311_and_the_project() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    # repo2docker installs environment.yml before the repository is copied in: postBuild installs cnnbook.
    post_build = ROOT / "postBuild"
    assert post_build.stat().st_mode & 0o111, "postBuild must be executable"
    assert "pip install --no-deps -e ." in post_build.read_text()


def test_required_pins() -> None:
    ours = _pyproject_requirements()
    assert ours["torch"] == "torch==2.14.1"
    assert ours["torchvision"] == "torchvision==0.29.1"
    assert ours["jupyter-book"].endswith("<2")
    assert "<0.10" in ours["nbgrader"]


def test_no_slow_rfc3987_grammar_in_the_environment() -> None:
    """jsonschema below 4.25: its format-nongpl extra would install rfc3987-syntax, which every process that
    imports nbformat (each nbgrader autograde, each book build) then spends seconds compiling a grammar for."""
    import importlib.metadata as md
    import importlib.util

    assert "<4.25" in _pyproject_requirements()["jsonschema"]
    major, minor = (int(x) for x in md.version("jsonschema").split(".")[:2])
    assert (major, minor) < (4, 25), f"jsonschema {md.version('jsonschema')} is installed; run `make venv` again"
    assert importlib.util.find_spec("rfc3987_syntax") is None, (
        "rfc3987-syntax is installed (left from an older environment): `pip uninstall rfc3987-syntax`, "
        "or delete .venv and run `make venv`")
