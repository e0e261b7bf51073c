"""Per-student limits on memory, processes and CPU, as one cgroup around a student's kernel and everything it
starts (issue 17, hole 6): a command prefix that goes in front of the sandbox's (grader_sandbox.py), and the
removal of that cgroup, with whatever is still running in it, once the kernel is done.

Four mechanisms, the first that works on this machine, chosen once per process (:func:`limits_mechanism`;
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

3. cgroup v1 (a hybrid or legacy hierarchy whose memory, pids and cpu hierarchies this process may write
   to, as root on most Linux machines without systemd as PID 1): one folder per notebook in each of the
   three hierarchies, under ``<own cgroup>/cnnbook-grading/``, with ``memory.limit_in_bytes`` (and
   ``memory.memsw.limit_in_bytes``: no swapping around it), ``pids.max`` and ``cpu.cfs_quota_us``;

   A cgroup folder counts as working only once a probe group in it took the limits and was removed.

4. none of these: the per-process ``prlimit`` limits of the sandbox stand alone (address space per
   process, processes per user id when grading as root), and the log says so with the reason.

The roots and the files naming this process's cgroups and mounts are module constants so that the tests
can point them at a folder laid out like a cgroup filesystem. The course's build machine has a hybrid
hierarchy: cgroup v1 (mechanism 3) is tested there on the real kernel; cgroup v2 only on a stand-in.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from db_snapshots import pid_alive  # noqa: E402 - next to this file

CGROUP_ROOTS = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"))
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
PROC_SELF_MOUNTINFO = Path("/proc/self/mountinfo")
CONTROLLERS = ("memory", "pids", "cpu")
ENABLE = " ".join(f"+{c}" for c in CONTROLLERS)

PARENT = "cnnbook-grading"  # the folder the students' cgroups are made in
PROBE_LIMITS = ("67108864", 8, 1.0)  # memory (bytes), processes, CPUs of the probe group that tests a folder
KERNEL_CPUS = 1  # CPUs of one student's cgroup (its CPU quota), and the compute threads its kernel is told to use

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
        parent = own / PARENT
        try:
            _enable_controllers(own)
            parent.mkdir(exist_ok=True)
            (parent / "cgroup.subtree_control").write_text(ENABLE)
            probe = parent / _group_name("probe")  # a student's group, made and limited as for a kernel
            _limit(probe, *PROBE_LIMITS)
            probe.rmdir()
            return parent
        except OSError:
            continue
    return None


def _group_name(name: str) -> str:
    """A notebook run's cgroup name: this process's id first, so that a grader killed before removing its
    groups leaves folders that the next grader on the machine recognises as left over (:func:`_sweep`)."""
    return f"{os.getpid()}-{name}"


def _sweep(parents: list[Path]) -> None:
    """Remove the empty groups of graders that no longer run on this machine (killed before :func:`release`)."""
    for parent in parents:
        for group in parent.iterdir() if parent.is_dir() else ():
            pid = group.name.split("-", 1)[0]
            if group.is_dir() and pid.isdigit() and not pid_alive(int(pid)):
                try:
                    group.rmdir()  # refused while a process is in it
                except OSError:
                    pass


def _limit(group: Path, memory: str, max_processes: int, cpu_quota: float) -> None:
    group.mkdir(exist_ok=True)
    (group / "memory.max").write_text(memory)
    if (group / "memory.swap.max").exists():  # absent without swap accounting
        (group / "memory.swap.max").write_text("0")  # the memory limit is not dodged by swapping
    (group / "pids.max").write_text(str(max_processes))
    (group / "cpu.max").write_text(f"{int(cpu_quota * 100_000)} 100000")


def _v1_own_folders() -> dict[str, Path]:
    """controller -> this process's own folder in the mounted cgroup v1 hierarchy that has the controller."""
    own: dict[str, str] = {}
    for line in PROC_SELF_CGROUP.read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            own.setdefault(controller, path)
    found: dict[str, Path] = {}
    for line in PROC_SELF_MOUNTINFO.read_text().splitlines():
        fields, _, rest = line.partition(" - ")
        fields_list, rest_list = fields.split(), rest.split()
        if len(fields_list) < 5 or len(rest_list) < 3 or rest_list[0] != "cgroup":
            continue
        root, mount, options = fields_list[3], fields_list[4], rest_list[2].split(",")
        for controller in CONTROLLERS:
            path = own.get(controller)
            if controller not in options or path is None or controller in found:
                continue
            if root != "/":  # a bind mount of part of the hierarchy: the path must lie inside it
                if not (path == root or path.startswith(root.rstrip("/") + "/")):
                    continue
                path = path[len(root):] or "/"
            found[controller] = Path(mount) / path.lstrip("/")
    return found


def _limit_v1(groups: dict[str, Path], memory: str, max_processes: int, cpu_quota: float) -> None:
    for group in groups.values():
        group.mkdir(exist_ok=True)
    memory_v1 = "-1" if memory == "max" else memory
    (groups["memory"] / "memory.limit_in_bytes").write_text(memory_v1)
    if (groups["memory"] / "memory.memsw.limit_in_bytes").exists():  # absent without swap accounting
        (groups["memory"] / "memory.memsw.limit_in_bytes").write_text(memory_v1)  # memory + swap: no swap
    (groups["pids"] / "pids.max").write_text(str(max_processes))
    (groups["cpu"] / "cpu.cfs_period_us").write_text("100000")
    (groups["cpu"] / "cpu.cfs_quota_us").write_text(str(int(cpu_quota * 100_000)))


def _cgroup_v1_parents() -> dict[str, Path] | None:
    """controller -> the folder the students' cgroups are made in, in each cgroup v1 hierarchy; None when the
    three hierarchies are not all there or a probe group cannot be made and limited in them."""
    try:
        own = _v1_own_folders()
    except (OSError, ValueError):
        return None
    if set(own) != set(CONTROLLERS):
        return None
    parents = {c: own[c] / PARENT for c in CONTROLLERS}
    probe = {c: parent / _group_name("probe") for c, parent in parents.items()}
    try:
        for parent in parents.values():
            parent.mkdir(exist_ok=True)
        _limit_v1(probe, *PROBE_LIMITS)
    except OSError:
        return None
    finally:
        for group in probe.values():
            try:
                group.rmdir()
            except OSError:
                pass
    return parents


def limits_mechanism() -> tuple[str, str]:
    """("systemd", ...), ("cgroup", folder), ("cgroup v1", folders) or ("prlimit", why the others do not
    work here); cached."""
    if not _LIMITS:
        _LIMITS["parents"] = {}
        if _systemd_scope_works():
            _LIMITS["how"] = ("systemd", "systemd-run --scope")
        elif (parent := _cgroup_v2_parent()) is not None:
            _LIMITS["how"], _LIMITS["parents"] = ("cgroup", str(parent)), {"": parent}
        elif (parents := _cgroup_v1_parents()) is not None:
            _LIMITS["how"] = ("cgroup v1", ", ".join(str(parents[c]) for c in CONTROLLERS))
            _LIMITS["parents"] = parents
        else:
            _LIMITS["how"] = ("prlimit", "no systemd scope (systemd is not PID 1 or no user bus), no delegated "
                                         "cgroup v2 folder with the memory, pids and cpu controllers, and no "
                                         "writable cgroup v1 memory, pids and cpu hierarchies")
        _sweep(list(_LIMITS["parents"].values()))
    return _LIMITS["how"]


def _groups(name: str) -> list[Path]:
    """The cgroup folders of the notebook run ``name`` (one for cgroup v2, three for v1, none otherwise)."""
    limits_mechanism()
    return [parent / _group_name(name) for parent in _LIMITS["parents"].values()]


def limits_prefix(name: str, memory_gb: float, max_processes: int,
                  cpu_quota: float = KERNEL_CPUS) -> list[str]:
    """A command prefix that puts the kernel and all its children in one cgroup with these limits.

    Empty when no cgroup mechanism works here: the per-process ``prlimit`` limits of the sandbox then stand
    alone (memory per process, processes per user id). Call :func:`release` with the same ``name`` when
    the kernel is done.
    """
    how = limits_mechanism()[0]
    memory = f"{int(memory_gb * 2**30)}" if memory_gb > 0 else "max"
    if how == "systemd":
        return [shutil.which("systemd-run") or "systemd-run", "--scope", "--quiet", "--collect",
                "-p", f"MemoryMax={memory if memory != 'max' else 'infinity'}", "-p", "MemorySwapMax=0",
                "-p", f"TasksMax={max_processes}", "-p", f"CPUQuota={int(cpu_quota * 100)}%"]
    if how in ("cgroup", "cgroup v1"):
        groups = dict(zip(_LIMITS["parents"], _groups(name)))  # {"": group} on v2, one per controller on v1
        if how == "cgroup":
            _limit(groups[""], memory, max_processes, cpu_quota)
        else:
            _limit_v1(groups, memory, max_processes, cpu_quota)
        join = " && ".join(f'echo $$ > "{group / "cgroup.procs"}"' for group in groups.values())
        return ["sh", "-c", f'{join} && exec "$@"', "cgroup"]
    return []


def _members(group: Path) -> list[int]:
    try:
        return [int(pid) for pid in (group / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def release(name: str, wait: float = 10.0) -> list[str]:
    """Kill every process still in the notebook run's cgroups and remove them; what could not be removed.

    A kernel's children that outlived it (a daemon, a fork bomb's sleepers) die here, whatever user they
    run as. Processes that fork while being killed are bounded by ``pids.max`` and killed on the next pass.
    """
    groups = [g for g in _groups(name) if g.is_dir()]
    deadline = time.monotonic() + wait
    left: list[str] = []
    for group in groups:
        while True:
            members = _members(group)
            if not members:
                try:
                    group.rmdir()
                except OSError as exc:
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        left.append(f"{group}: {exc.strerror}")
                        break
                    time.sleep(0.05)  # the last member exited but the cgroup is not released yet
                    continue
                break
            if time.monotonic() > deadline:
                left.append(f"{group}: {len(members)} process(es) would not die")
                break
            kill = group / "cgroup.kill"  # cgroup v2 (Linux 5.14+): the whole group at once
            if kill.exists():
                kill.write_text("1")
            else:
                for pid in members:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            time.sleep(0.05)
    return left
