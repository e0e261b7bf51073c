"""Per-student cgroup limits (autograder/grader_limits.py): on the machine's real kernel, and cgroup v2 also
on a folder laid out like a delegated cgroup v2 hierarchy.

The real kernel (the last section): where this process may write to the memory, pids and cpu hierarchies of
cgroup v1 (root on the course's build machine, which has a hybrid hierarchy) or has a delegated cgroup v2
folder, a kernel-enforced limit is hit for real: fork, memory, CPU quota, and the removal of a group with a
process still in it. Each test is skipped, with the reason, on a machine with neither.

The build machine has no delegated cgroup v2 hierarchy, so for cgroup v2 the kernel's rules are
played by a stand-in for ``Path.write_text`` under the fake root, the three that decide whether limits can be
set at all:
- a cgroup that holds a process cannot hand controllers to its children (EBUSY: "no internal processes");
- a limit file (``memory.max``, ``pids.max``, ``cpu.max``) exists only in a cgroup whose parent enabled that
  controller in ``cgroup.subtree_control`` (otherwise the write is refused);
- writing a PID into ``cgroup.procs`` moves the process out of the cgroup it was in;
and removing a cgroup's folder removes its interface files with it.
Whether a real kernel then enforces the limits is tested in the last section, on a machine that has such a folder.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from collections.abc import Iterator
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
    (tmp_path / "mountinfo").write_text("")  # no cgroup v1 hierarchy mounted
    monkeypatch.setattr(grader_limits, "CGROUP_ROOTS", (root,))
    monkeypatch.setattr(grader_limits, "PROC_SELF_CGROUP", tmp_path / "self_cgroup")
    monkeypatch.setattr(grader_limits, "PROC_SELF_MOUNTINFO", tmp_path / "mountinfo")
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
    group = cgroupfs / OWN / "cnnbook-grading" / f"{os.getpid()}-run-abc"
    assert {f: (group / f).read_text() for f in ("memory.max", "pids.max", "cpu.max")} == {
        "memory.max": str(2 * 2**30), "pids.max": "64", "cpu.max": "50000 100000"}
    proc = subprocess.run([*prefix, "sh", "-c", "echo $$"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert (group / "cgroup.procs").read_text().strip() == proc.stdout.strip()  # the same process, after exec
    Path.write_text(group / "cgroup.procs", "")  # the process has exited (the stand-in does not see it go)
    assert grader_limits.release("run-abc") == [] and not group.exists()


def test_groups_of_graders_no_longer_running_are_swept(cgroupfs: Path) -> None:
    """A grader killed before removing its groups leaves them; the next one on the machine removes the empty ones."""
    parent = cgroupfs / OWN / "cnnbook-grading"
    dead = _dead_pid()
    for name in (f"{dead}-cnnbook-grade-x", f"{os.getpid()}-cnnbook-grade-y", "not-a-grader"):
        (parent / name).mkdir(parents=True)
    grader_limits.limits_mechanism()
    assert sorted(p.name for p in parent.iterdir() if p.is_dir()) == [f"{os.getpid()}-cnnbook-grade-y", "not-a-grader"]


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_without_the_controllers_it_falls_back_to_prlimit_and_says_why(cgroupfs: Path) -> None:
    (cgroupfs / OWN / "cgroup.controllers").write_text("cpuset io\n")
    how, why = grader_limits.limits_mechanism()
    assert how == "prlimit" and "cgroup v2" in why and "cgroup v1" in why
    assert grader_limits.limits_prefix("run-abc", 2.0, 64) == []


def test_a_second_process_in_the_same_cgroup_keeps_it_on_prlimit(cgroupfs: Path) -> None:
    """Another process in the grader's cgroup: enabling stays refused after this one moved; no crash."""
    own = cgroupfs / OWN
    Path.write_text(own / "cgroup.procs", f"{os.getpid()}\n1\n")
    assert grader_limits.limits_mechanism()[0] == "prlimit"


# ---- cgroup v1: where this machine's mount table is read -------------------------------------------------
def test_cgroup_v1_folders_are_found_from_the_mount_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Separate and co-mounted hierarchies, and a container's bind mount of part of one (root field not "/")."""
    (tmp_path / "cgroup").write_text("9:pids:/job/42\n4:memory:/box/7/job\n2:cpu,cpuacct:/job\n1:cpuset:/\n0::/\n")
    (tmp_path / "mountinfo").write_text(
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
        "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
        "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
        "35 31 0:32 /box/7 /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
        "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n")
    monkeypatch.setattr(grader_limits, "PROC_SELF_CGROUP", tmp_path / "cgroup")
    monkeypatch.setattr(grader_limits, "PROC_SELF_MOUNTINFO", tmp_path / "mountinfo")
    assert grader_limits._v1_own_folders() == {"cpu": Path("/sys/fs/cgroup/cpu,cpuacct/job"),
                                               "memory": Path("/sys/fs/cgroup/memory/job"),
                                               "pids": Path("/sys/fs/cgroup/pids/job/42")}


# ---- the real kernel: cgroup v1 on the build machine, cgroup v2 where a delegated folder exists -------------
REAL = {"cgroup v1": "v1", "cgroup": "v2"}  # limits_mechanism()'s names of the two cgroup filesystems


@pytest.fixture
def real_cgroup(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A group name of this test, on this machine's real cgroup mechanism; skipped without one (prlimit, or
    systemd scopes, whose folders systemd names)."""
    monkeypatch.setattr(grader_limits, "_LIMITS", {})
    how, why = grader_limits.limits_mechanism()
    if how not in REAL:
        pytest.skip(f"this machine's per-student limits are {how} ({why}), not a cgroup folder of its own")
    name = f"test-{os.urandom(4).hex()}"
    yield name
    assert grader_limits.release(name) == []


def _run_limited(name: str, code: str, memory_gb: float = 1.0, max_processes: int = 64,
                 cpu_quota: float = 1.0) -> subprocess.CompletedProcess[str]:
    prefix = grader_limits.limits_prefix(name, memory_gb, max_processes, cpu_quota)
    return subprocess.run([*prefix, sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=120)


def _v1() -> bool:
    return REAL[grader_limits.limits_mechanism()[0]] == "v1"


def _group(name: str, controller: str) -> Path:
    """The run's folder for ``controller``: one per controller on cgroup v1, the one folder on v2."""
    groups = dict(zip(grader_limits._LIMITS["parents"], grader_limits._groups(name)))
    return groups[controller if _v1() else ""]


def _keys(path: Path) -> dict[str, int]:
    """A flat-keyed cgroup file (``pids.events``, ``cpu.stat``, ``memory.events``, ``memory.oom_control``)."""
    return {key: int(value) for key, value in (line.split() for line in path.read_text().splitlines())}


FORK = """
import os, time
kids = []
try:
    while len(kids) < 1000:
        pid = os.fork()
        if pid == 0:
            time.sleep(20)
            os._exit(0)
        kids.append(pid)
except OSError as exc:
    print(len(kids), exc.errno)
for pid in kids:
    os.kill(pid, 9)
"""


def test_the_kernel_stops_fork_at_the_pids_limit(real_cgroup: str) -> None:
    proc = _run_limited(real_cgroup, FORK, max_processes=24)
    count, err = proc.stdout.split()
    assert int(err) == errno.EAGAIN and 16 <= int(count) < 24, proc.stdout  # the parent counts too
    assert _keys(_group(real_cgroup, "pids") / "pids.events")["max"] > 0  # forks the pids controller refused


def test_the_kernel_kills_a_student_over_the_memory_limit(real_cgroup: str) -> None:
    proc = _run_limited(real_cgroup, "x = bytearray(768 * 2**20); print('survived')", memory_gb=0.25)
    assert proc.returncode == -9 and "survived" not in proc.stdout, (proc.returncode, proc.stderr[-500:])
    group = _group(real_cgroup, "memory")
    events = _keys(group / ("memory.oom_control" if _v1() else "memory.events"))
    assert events["oom_kill"] == 1  # killed by the group's out-of-memory killer, not by anything else
    if _v1():
        assert int((group / "memory.max_usage_in_bytes").read_text()) == 2**28  # and never above the limit
    elif (group / "memory.peak").is_file():  # cgroup v2's peak: Linux 5.19 and later
        assert int((group / "memory.peak").read_text()) <= 2**28


def test_the_kernel_throttles_a_student_to_the_cpu_quota(real_cgroup: str) -> None:
    spin = "import time\nt = time.monotonic()\nwhile time.monotonic() - t < 1.5: pass\nprint(time.process_time())"
    proc = _run_limited(real_cgroup, spin, cpu_quota=0.3)
    assert proc.returncode == 0, proc.stderr
    assert _keys(_group(real_cgroup, "cpu") / "cpu.stat")["nr_throttled"] > 0  # enforced, whatever the load
    assert float(proc.stdout) < 1.0  # 0.3 CPU over ~1.5 s


def test_release_kills_what_the_kernel_left_and_removes_the_groups(real_cgroup: str) -> None:
    daemon = ("import subprocess\nprint(subprocess.Popen(['sleep', '300'], start_new_session=True, "
              "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).pid)")
    proc = _run_limited(real_cgroup, daemon)
    sleeper = int(proc.stdout)
    assert Path(f"/proc/{sleeper}").exists()  # outlived its parent, as a daemon would
    groups = grader_limits._groups(real_cgroup)
    assert groups and all(g.is_dir() for g in groups)
    assert grader_limits.release(real_cgroup) == []
    assert not any(g.exists() for g in groups)
    time.sleep(0.2)  # reaped by init
    assert not Path(f"/proc/{sleeper}").exists() or "Z" in Path(f"/proc/{sleeper}/stat").read_text().split()[2]
