"""Per-student limits on memory, processes and CPU, as one cgroup around a student's kernel and everything it
starts (issue 17, hole 6): a command prefix that goes in front of the sandbox's (grader_sandbox.py).

Three mechanisms, the first that works on this machine, chosen once per process (:func:`limits_mechanism`;
the grading log names it):

1. ``systemd-run --scope`` with ``MemoryMax``, ``MemorySwapMax=0``, ``TasksMax`` and ``CPUQuota``: a
   machine whose systemd the grading user may ask for scopes (grading as root, or a user session);
2. a delegated cgroup v2 folder (a container with its own cgroup namespace, a systemd unit with
   ``Delegate=yes``): this process's own cgroup, with the memory, pids and cpu controllers. cgroup v2
   lets a cgroup hand controllers to its children only when it holds no process itself (the "no internal
   processes" rule), so when enabling them is refused because this process sits there, it first moves
   itself into a leaf ``cnnbook-grader`` next to the students' folder. Layout::

       <own cgroup>/                   subtree_control: +memory +pids +cpu
           cnnbook-grader/             this grading process (only when it had to move)
           cnnbook-grading/            subtree_control: +memory +pids +cpu
               <run folder name>/      one per notebook: memory.max, memory.swap.max, pids.max, cpu.max

   The folder counts as working only once a probe group in it took those four limits and was removed.

3. none of these: the per-process ``prlimit`` limits of the sandbox stand alone (address space per
   process, processes per user id when grading as root), and the log says so with the reason.

The roots and the file naming this process's cgroup are module constants so that the tests can point them
at a folder laid out like a cgroup filesystem; a real cgroup v2 hierarchy with delegation is not available
on the course's build machine (it has a hybrid cgroup v1 one), so the kernel's own checks (which files
exist, which writes it refuses) are not exercised there.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

CGROUP_ROOTS = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"))
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
CONTROLLERS = ("memory", "pids", "cpu")
ENABLE = " ".join(f"+{c}" for c in CONTROLLERS)

_LIMITS: dict[str, Any] = {}


def _systemd_scope_works() -> bool:
    systemd_run = shutil.which("systemd-run")
    if systemd_run is None:
        return False
    try:
        proc = subprocess.run([systemd_run, "--scope", "--quiet", "--collect", "-p", "MemoryMax=64M", "-p",
                               "TasksMax=8", "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def _own_cgroup() -> Path:
    """This process's cgroup v2 path (the ``0::`` line of /proc/self/cgroup), "/" when none is named."""
    for line in PROC_SELF_CGROUP.read_text().splitlines():
        if line.startswith("0::"):
            return Path(line[3:].strip() or "/")
    raise OSError(errno.ENOENT, "no cgroup v2 line in " + str(PROC_SELF_CGROUP))


def _enable_controllers(group: Path) -> None:
    """Let ``group``'s children have the memory, pids and cpu controllers; moves this process out of
    ``group`` into a leaf when cgroup v2 refuses because it holds a process (EBUSY)."""
    try:
        (group / "cgroup.subtree_control").write_text(ENABLE)
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            raise
        leaf = group / "cnnbook-grader"
        leaf.mkdir(exist_ok=True)
        (leaf / "cgroup.procs").write_text(str(os.getpid()))
        (group / "cgroup.subtree_control").write_text(ENABLE)


def _cgroup_v2_parent() -> Path | None:
    """The folder the students' cgroups are made in, ready for their limits; None when no delegated cgroup
    v2 folder with the memory, pids and cpu controllers works here."""
    for root in CGROUP_ROOTS:
        try:
            controllers = (root / "cgroup.controllers").read_text().split()
            own = root / str(_own_cgroup()).lstrip("/")
            if not set(CONTROLLERS) <= set((own / "cgroup.controllers").read_text().split()):
                continue
        except OSError:
            continue
        if not set(CONTROLLERS) <= set(controllers):
            continue
        parent = own / "cnnbook-grading"
        try:
            _enable_controllers(own)
            parent.mkdir(exist_ok=True)
            (parent / "cgroup.subtree_control").write_text(ENABLE)
            probe = parent / f"probe-{os.getpid()}"  # a student's group, made and limited as for a kernel
            _limit(probe, "67108864", 8, 1.0)
            probe.rmdir()
            return parent
        except OSError:
            continue
    return None


def _limit(group: Path, memory: str, max_processes: int, cpu_quota: float) -> None:
    group.mkdir(exist_ok=True)
    (group / "memory.max").write_text(memory)
    if (group / "memory.swap.max").exists():  # absent without swap accounting
        (group / "memory.swap.max").write_text("0")  # the memory limit is not dodged by swapping
    (group / "pids.max").write_text(str(max_processes))
    (group / "cpu.max").write_text(f"{int(cpu_quota * 100_000)} 100000")


def limits_mechanism() -> tuple[str, str]:
    """("systemd", ...), ("cgroup", folder) or ("prlimit", why the others do not work here); cached."""
    if not _LIMITS:
        if _systemd_scope_works():
            _LIMITS["how"] = ("systemd", "systemd-run --scope")
        elif (parent := _cgroup_v2_parent()) is not None:
            _LIMITS["how"] = ("cgroup", str(parent))
        else:
            _LIMITS["how"] = ("prlimit", "no systemd scope (systemd is not PID 1 or no user bus) and no delegated "
                                         "cgroup v2 folder with the memory, pids and cpu controllers")
    return _LIMITS["how"]


def limits_prefix(name: str, memory_gb: float, max_processes: int, cpu_quota: float = 1.0) -> list[str]:
    """A command prefix that puts the kernel and all its children in one cgroup with these limits.

    Empty when neither systemd nor a delegated cgroup v2 folder works: the per-process ``prlimit``
    limits of the sandbox then stand alone (memory per process, processes per user id).
    """
    how, where = limits_mechanism()
    memory = f"{int(memory_gb * 2**30)}" if memory_gb > 0 else "max"
    if how == "systemd":
        return [shutil.which("systemd-run") or "systemd-run", "--scope", "--quiet", "--collect",
                "-p", f"MemoryMax={memory if memory != 'max' else 'infinity'}", "-p", "MemorySwapMax=0",
                "-p", f"TasksMax={max_processes}", "-p", f"CPUQuota={int(cpu_quota * 100)}%"]
    if how == "cgroup":
        group = Path(where) / name
        _limit(group, memory, max_processes, cpu_quota)
        return ["sh", "-c", f'echo $$ > "{group / "cgroup.procs"}" && exec "$@"', "cgroup"]
    return []
