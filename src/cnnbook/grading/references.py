"""The reference store: ``autograder/references/<assignment>/<item>.pt`` and its SHA-256 manifest."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Mapping

import torch

MANIFEST_NAME = "MANIFEST.sha256"
REFERENCE_FORMAT = 1

def references_root() -> Path:
    """``$CNNBOOK_REFERENCES`` (set by autograder/nbgrader_config.py) or the repository's references."""
    env = os.environ.get("CNNBOOK_REFERENCES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "autograder" / "references"


def load_reference(item: str, root: Path | None = None) -> dict[str, Any]:
    """Load reference ``item`` ("<assignment>/<name>") with ``weights_only=True`` (no pickle)."""
    path = (root or references_root()) / f"{item}.pt"
    if not path.is_file():
        raise RuntimeError(
            f"reference {item!r} not found at {path}; run `python autograder/make_references.py` "
            f"(instructors only: students cannot run hidden tests)"
        )
    ref = torch.load(path, map_location="cpu", weights_only=True)
    if ref.get("format") != REFERENCE_FORMAT:
        raise RuntimeError(f"reference {path} has format {ref.get('format')!r}, expected {REFERENCE_FORMAT}")
    return ref


def save_reference(ref: Mapping[str, Any], path: Path) -> None:
    """Save a reference item (used by the generator); the bytes are deterministic."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": REFERENCE_FORMAT, **ref}, path)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(root: Path) -> Path:
    """Write ``MANIFEST.sha256`` (``sha256sum -c`` format) for every ``*.pt`` file under ``root``."""
    lines = [f"{_sha256(p)}  {p.relative_to(root).as_posix()}" for p in sorted(root.rglob("*.pt"))]
    manifest = root / MANIFEST_NAME
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def verify_manifest(root: Path | None = None) -> list[str]:
    """Problems with the reference files under ``root``: hash mismatches, missing or unlisted files."""
    root = root or references_root()
    manifest = root / MANIFEST_NAME
    if not manifest.is_file():
        return [f"{manifest} is missing"]
    listed: dict[str, str] = {}
    for line in manifest.read_text().splitlines():
        if line.strip():
            digest, _, rel = line.partition("  ")
            listed[rel] = digest
    problems = []
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*.pt")}
    for rel in sorted(set(listed) - on_disk):
        problems.append(f"{rel}: listed in the manifest but missing")
    for rel in sorted(on_disk - set(listed)):
        problems.append(f"{rel}: not listed in the manifest")
    for rel in sorted(on_disk & set(listed)):
        if _sha256(root / rel) != listed[rel]:
            problems.append(f"{rel}: SHA-256 differs from the manifest")
    return problems


