"""Per-student cgroup limits (autograder/grader_limits.py) on a folder laid out like a delegated cgroup v2
hierarchy.

The build machine has no delegated cgroup v2 hierarchy (a hybrid cgroup v1 one), so the kernel's rules are
played by a stand-in for ``Path.write_text`` under the fake root, the three that decide whether limits can be
set at all:
- a cgroup that holds a process cannot hand controllers to its children (EBUSY: "no internal processes");
- a limit file (``memory.max``, ``pids.max``, ``cpu.max``) exists only in a cgroup whose parent enabled that
  controller in ``cgroup.subtree_control`` (otherwise the write is refused);
- writing a PID into ``cgroup.procs`` moves the process out of the cgroup it was in;
and removing a cgroup's folder removes its interface files with it.
Whether a real kernel then enforces the limits is not tested here.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "autograder"))

import grader_limits  # noqa: E402

OWN = "grader.slice/job.scope"  # this process's cgroup in the fake hierarchy


@pytest.fixture
def cgroupfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cgroup"
    own = root / OWN
    own.mkdir(parents=True)
    for group in (root, own):
        (group / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (own / "cgroup.subtree_control").write_text("")
    (own / "cgroup.procs").write_text(f"{os.getpid()}\n")  # the grading process sits in its own cgroup
    (tmp_path / "self_cgroup").write_text(f"0::/{OWN}\n")
    monkeypatch.setattr(grader_limits, "CGROUP_ROOTS", (root,))
    monkeypatch.setattr(grader_limits, "PROC_SELF_CGROUP", tmp_path / "self_cgroup")
    monkeypatch.setattr(grader_limits, "_LIMITS", {})
    monkeypatch.setattr(grader_limits, "_systemd_scope_works", lambda: False)
    write_text = Path.write_text

    def kernel_rules(self: Path, data: str, *args: object, **kwargs: object) -> int:
        if root in self.parents:
            if self.name == "cgroup.subtree_control":
                procs = self.parent / "cgroup.procs"
                if procs.is_file() and procs.read_text().strip():
                    raise OSError(errno.EBUSY, "Device or resource busy", str(self))
            elif self.name in ("memory.max", "memory.swap.max", "pids.max", "cpu.max"):
                enabled = self.parent.parent / "cgroup.subtree_control"
                if f"+{self.name.split('.')[0]}" not in (enabled.read_text() if enabled.is_file() else ""):
                    raise PermissionError(errno.EACCES, "Permission denied", str(self))
            elif self.name == "cgroup.procs":
                for other in root.rglob("cgroup.procs"):
                    lines = [ln for ln in other.read_text().split() if ln != data.strip()]
                    write_text(other, "".join(f"{ln}\n" for ln in lines))
        return write_text(self, data, *args, **kwargs)

    rmdir = Path.rmdir

    def remove_group(self: Path) -> None:  # a cgroup's interface files go with it
        if root in self.parents:
            for f in self.iterdir():
                if f.is_file():
                    f.unlink()
        rmdir(self)

    monkeypatch.setattr(Path, "write_text", kernel_rules)
    monkeypatch.setattr(Path, "rmdir", remove_group)
    return root


def test_a_delegated_cgroup_v2_folder_is_used_with_both_levels_enabled(cgroupfs: Path) -> None:
    own = cgroupfs / OWN
    how, where = grader_limits.limits_mechanism()
    assert (how, where) == ("cgroup", str(own / "cnnbook-grading"))
    # the grading process moved into a leaf, so that its cgroup may hand controllers down
    assert (own / "cgroup.procs").read_text().strip() == ""
    assert (own / "cnnbook-grader" / "cgroup.procs").read_text().strip() == str(os.getpid())
    for group in (own, own / "cnnbook-grading"):
        assert (group / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert [p.name for p in (own / "cnnbook-grading").iterdir() if p.is_dir()] == []  # the probe was removed


def test_a_students_group_gets_its_limits_and_the_kernel_joins_it(cgroupfs: Path) -> None:
    prefix = grader_limits.limits_prefix("run-abc", memory_gb=2.0, max_processes=64, cpu_quota=0.5)
    group = cgroupfs / OWN / "cnnbook-grading" / "run-abc"
    assert {f: (group / f).read_text() for f in ("memory.max", "pids.max", "cpu.max")} == {
        "memory.max": str(2 * 2**30), "pids.max": "64", "cpu.max": "50000 100000"}
    proc = subprocess.run([*prefix, "sh", "-c", "echo $$"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert (group / "cgroup.procs").read_text().strip() == proc.stdout.strip()  # the same process, after exec


def test_without_the_controllers_it_falls_back_to_prlimit_and_says_why(cgroupfs: Path) -> None:
    (cgroupfs / OWN / "cgroup.controllers").write_text("cpuset io\n")
    how, why = grader_limits.limits_mechanism()
    assert how == "prlimit" and "cgroup v2" in why
    assert grader_limits.limits_prefix("run-abc", 2.0, 64) == []


def test_a_second_process_in_the_same_cgroup_keeps_it_on_prlimit(cgroupfs: Path) -> None:
    """Another process in the grader's cgroup: enabling stays refused after this one moved; no crash."""
    own = cgroupfs / OWN
    Path.write_text(own / "cgroup.procs", f"{os.getpid()}\n1\n")
    assert grader_limits.limits_mechanism()[0] == "prlimit"
