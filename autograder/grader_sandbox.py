"""The sandbox a student's kernel runs in, and what surrounds it (issues 7, 13 and 17).

- :func:`sandbox_command`: bubblewrap with a read-only system, no network, only the run folder and the
  grader's work folder writable, and only the files of ``/etc`` that Python, torch and the kernel read.
- per-student limits on memory, processes and CPU as one cgroup: :mod:`grader_limits`, whose command
  prefix goes in front of the sandbox's.
- :func:`throwaway_copy`: the student's folder copied for the run (regular files and folders only,
  capped in size and count); the kernel never sees the folder nbgrader writes the result into.
- :func:`cuda_preflight`: with ``CNNBOOK_GRADING_DEVICE=cuda``, one tiny CUDA operation through the
  same sandbox command before any student is graded.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from traitlets import Float, Integer, Unicode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grader_limits import KERNEL_CPUS, limits_prefix, release  # noqa: E402 - next to this file

def _bwrap_problems() -> list[str]:
    """Why the sandbox cannot start here (empty when bubblewrap works)."""
    import subprocess

    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return ["isolation: bubblewrap is not installed (`apt-get install bubblewrap`, or `make sandbox`); "
                "to grade unisolated on purpose, set CNNBOOK_ISOLATION=none"]
    proc = subprocess.run([bwrap, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "--dev", "/dev", "--proc",
                           "/proc", "true"], capture_output=True, text=True, timeout=60)
    if proc.returncode:
        return [f"isolation: bubblewrap cannot create a sandbox here ({proc.stderr.strip()[:300]}); user namespaces "
                "may be disabled (sysctl kernel.unprivileged_userns_clone / user.max_user_namespaces), or grade "
                "as root; to grade unisolated on purpose, set CNNBOOK_ISOLATION=none"]
    return []




def _hand_over(paths: list[Path], uid: int) -> dict[str, tuple[int, int]] | None:
    """As root: give ``paths`` (recursively) to the sandbox user; returns the old owners, else None."""
    if os.geteuid() != 0 or uid < 0:
        return None
    owners = {}
    for top in paths:
        for path in [top, *top.rglob("*")]:
            st = path.lstat()
            owners[str(path)] = (st.st_uid, st.st_gid)
            os.lchown(path, uid, uid)
    return owners


def _kill_user(uid: int, log: Any, wait_s: float = 30.0) -> None:
    """SIGKILL every process of ``uid`` (a sandbox user of this run only) and wait until they are gone."""
    import signal
    import time

    deadline = time.monotonic() + wait_s
    while True:
        left = []
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
                if int(fields.get("Uid", "-1").split()[0]) == uid:
                    left.append(int(status.parent.name))
            except (OSError, ValueError):
                continue
        if not left:
            return
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if time.monotonic() > deadline:
            log.error("%d processes of the sandbox user %d are still there after %g s", len(left), uid, wait_s)
            return
        time.sleep(0.2)


def _take_back(paths: list[Path], owners: dict[str, tuple[int, int]]) -> None:
    for top in paths:
        if not top.exists():
            continue
        for path in [top, *top.rglob("*")]:
            uid, gid = owners.get(str(path), (0, 0))  # files the kernel created go to the grader too
            os.lchown(path, uid, gid)


class GraderKernelManager(AsyncKernelManager):
    """The kernel as nbgrader starts it, with ``python -I``: the submission's folder is not on sys.path,
    so a submitted numpy.py, torch.py or cnnbook/ cannot shadow the real package."""

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        cmd = super().format_kernel_cmd(extra_arguments)
        if cmd and Path(cmd[0]).name.startswith("python") and "-I" not in cmd[1:2]:
            cmd = [cmd[0], "-I", *cmd[1:]]
        return cmd + ["--IPKernelApp.ignore_cwd=True"]


class IsolatedKernelManager(GraderKernelManager):
    """The kernel in a bubblewrap sandbox (see ``sandbox_command``), talking over Unix sockets."""

    student_dir = Unicode("")
    work_dir = Unicode("")
    memory_gb = Float(8.0)
    cpu_seconds = Integer(900)
    max_processes = Integer(1024)
    max_file_mb = Integer(512)
    sandbox_uid = Integer(-1)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        ipc = Path(self.work_dir) / "ipc"
        ipc.mkdir(exist_ok=True)
        if self.sandbox_uid >= 0:
            os.chown(ipc, self.sandbox_uid, self.sandbox_uid)
        self.transport = "ipc"  # no network in the sandbox: Unix sockets instead of TCP
        self.ip = str(ipc / "kernel")
        self.connection_file = str(ipc / "kernel.json")

    def write_connection_file(self, **kwargs: Any) -> None:
        super().write_connection_file(**kwargs)
        if self.sandbox_uid >= 0:
            os.chown(self.connection_file, self.sandbox_uid, self.sandbox_uid)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        cmd = super().format_kernel_cmd(extra_arguments)
        return sandbox_command(cmd, student_dir=Path(self.student_dir), work_dir=Path(self.work_dir),
                               memory_gb=self.memory_gb, cpu_seconds=self.cpu_seconds,
                               max_processes=self.max_processes, max_file_mb=self.max_file_mb,
                               uid=self.sandbox_uid)


# What of /etc the kernel reads: the dynamic linker's cache, Python's Debian configuration, time zone,
# name-service switch, MIME types and fonts (matplotlib). Nothing else of /etc (no hub configuration
# with service tokens, no shadow file, no ssh or ssl keys) exists in the sandbox. passwd and group are
# written by the grader: the sandbox user and root only.
ETC_NEEDED = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "nsswitch.conf",
              "mime.types", "fonts", "alternatives", "python3", f"python3.{sys.version_info.minor}",
              "matplotlibrc")


def _etc_binds(work_dir: Path, uid: int) -> list[str]:
    args = ["--perms", "0755", "--dir", "/etc"]
    for name in ETC_NEEDED:
        path = Path("/etc") / name
        if path.exists():
            args += ["--ro-bind", str(path), str(path)]
    user = uid if uid >= 0 else os.getuid()
    etc = work_dir / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "passwd").write_text(f"root:x:0:0:root:/root:/bin/sh\nstudent:x:{user}:{user}:student:/tmp:/bin/sh\n")
    (etc / "group").write_text(f"root:x:0:\nstudent:x:{user}:\n")
    return args + ["--ro-bind", str(etc / "passwd"), "/etc/passwd", "--ro-bind", str(etc / "group"), "/etc/group"]


def sandbox_command(cmd: list[str], student_dir: Path, work_dir: Path, memory_gb: float = 8.0,
                    cpu_seconds: int = 900, max_processes: int = 1024, max_file_mb: int = 512,
                    uid: int = -1) -> list[str]:
    """``cmd`` wrapped in bubblewrap: read-only system, Python and package; no network; limits.

    The sandbox sees /usr, the files of /etc in :data:`ETC_NEEDED`, the Python installation, the
    virtual environment and the cnnbook source, all read-only; the run folder (a throwaway copy of the
    student's) and the grader's work folder (records, the references without expected values, the
    kernel's sockets) read-write; a private /tmp of 512 MiB. Not the course folder (gradebook,
    references, other students), not solutions/, not the home folder. New network, PID, IPC and UTS
    namespaces; the kernel dies with the grader. As root, the kernel runs as ``uid`` (an unprivileged
    user), so RLIMIT_NPROC bounds a fork bomb. Per-student cgroup limits: :func:`grader_limits.limits_prefix`.
    """
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise RuntimeError(
            "isolated grading needs bubblewrap (`apt-get install bubblewrap`, or `make sandbox`); it is not "
            "installed. Install it, or grade unisolated on purpose with CNNBOOK_ISOLATION=none "
            "(see the instructor guide)")
    import cnnbook

    python = Path(cmd[0])
    ro = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), python.resolve().parent.parent,
          Path(cnnbook.__file__).resolve().parent.parent}
    args = [bwrap, "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent",
            "--ro-bind", "/usr", "/usr", *_etc_binds(work_dir, uid)]
    for top in ("/bin", "/lib", "/lib64", "/sbin", "/lib32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    made: set[str] = set()

    def parents(path: Path) -> list[str]:
        out = []
        for parent in reversed(path.parents):
            p = str(parent)
            if p not in ("/", "/usr", "/etc", "/tmp") and p not in made:
                made.add(p)
                out += ["--perms", "0755", "--dir", p]
        return out

    args += ["--dev", "/dev", "--proc", "/proc", "--perms", "1777", "--size", str(512 * 2**20), "--tmpfs", "/tmp"]
    for path in sorted(ro):
        if str(path).startswith("/usr/"):
            continue
        args += parents(path) + ["--ro-bind", str(path), str(path)]
    if os.environ.get("CNNBOOK_GRADING_DEVICE", "cpu").startswith(("cuda", "auto")):
        for dev in sorted(Path("/dev").glob("nvidia*")):
            args += ["--dev-bind", str(dev), str(dev)]
    for path in (student_dir.resolve(), work_dir.resolve()):
        args += parents(path) + ["--bind", str(path), str(path)]
    args += ["--chdir", str(student_dir.resolve()), "--clearenv"]
    env = {"HOME": "/tmp", "PATH": f"{python.parent}:/usr/bin:/bin", "LANG": "C.UTF-8", "MPLBACKEND": "Agg",
           "MALLOC_ARENA_MAX": "2", "PYTHONDONTWRITEBYTECODE": "1"}
    for key, value in os.environ.items():
        if key.startswith(("CNNBOOK_", "OMP_", "MKL_", "CUBLAS_", "CUDA_", "NVIDIA_")):
            env[key] = value
    # as many compute threads as the student's cgroup has CPUs (the references were made on one), whatever
    # the grader's own environment says: threads beyond the CPU quota spin in OpenMP's barriers while
    # throttled (measured: 14 % more CPU per student with two workers on two cores)
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(KERNEL_CPUS)
    for key, value in sorted(env.items()):
        args += ["--setenv", key, value]
    limits = ["prlimit", f"--cpu={cpu_seconds}", f"--fsize={max_file_mb * 2**20}", "--core=0", "--nofile=1024"]
    if memory_gb > 0:
        limits.append(f"--as={int(memory_gb * 2**30)}")
    if uid >= 0:
        limits.append(f"--nproc={max_processes}")
        args += ["--cap-add", "CAP_SETUID,CAP_SETGID", "setpriv", f"--reuid={uid}", f"--regid={uid}",
                 "--clear-groups", "--inh-caps=-all"]
    group = limits_prefix(work_dir.name, memory_gb, max_processes)
    return group + args + [*limits, "--", *cmd]


# ---- the run folder ---------------------------------------------------------------------------------------
def throwaway_copy(source: Path, target: Path, max_files: int, max_mb: int) -> list[str]:
    """Copy the regular files and folders of ``source`` into ``target`` for the kernel; what was left out.

    Links, FIFOs, sockets and devices are never copied (nor followed); files beyond ``max_files`` or
    beyond ``max_mb`` MiB in all are left out. The kernel runs in ``target``: nothing it does can
    reach ``source``, where nbgrader writes the graded notebook.
    """
    left_out: list[str] = []
    count, size = 0, 0
    target.mkdir(parents=True, exist_ok=True)
    for folder, dirs, files in os.walk(source, followlinks=False):
        rel = Path(folder).relative_to(source)
        for name in sorted(dirs):
            if os.path.islink(Path(folder) / name):
                left_out.append(f"{rel / name} (a link)")
                dirs.remove(name)
            else:
                (target / rel / name).mkdir(exist_ok=True)
        for name in sorted(files):
            path = Path(folder) / name
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode):
                left_out.append(f"{rel / name} (not a regular file)")
                continue
            count, size = count + 1, size + info.st_size
            if count > max_files or size > max_mb * 2**20:
                left_out.append(f"{rel / name} (over the cap of {max_files} files or {max_mb} MiB)")
                continue
            shutil.copyfile(path, target / rel / name, follow_symlinks=False)
    return left_out


def remove_special_files(folder: Path) -> list[str]:
    """Delete everything under ``folder`` that is neither a regular file nor a folder (links, FIFOs,
    sockets, devices), so that no writer can follow or block on one; returns what was removed."""
    removed = []
    for parent, dirs, files in os.walk(folder, followlinks=False):
        for name in [*dirs, *files]:
            path = Path(parent) / name
            mode = path.lstat().st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                path.unlink()
                removed.append(str(path.relative_to(folder)))
    return removed


# ---- CUDA preflight ---------------------------------------------------------------------------------------
CUDA_PROBE = ("import torch; x = torch.ones(64, 64, device='cuda'); y = (x @ x).sum().item(); "
              "assert y == 64 ** 3, y; print('cuda ok', torch.cuda.get_device_name(0))")


def cuda_preflight(work_dir: Path, memory_gb: float, cpu_seconds: int, max_processes: int, max_file_mb: int,
                   uid: int = -1, timeout: float = 300.0) -> list[str]:
    """Problems running one CUDA matrix product inside the sandbox, as the kernel would (empty: works)."""
    run_dir = work_dir / "preflight"
    run_dir.mkdir(parents=True, exist_ok=True)
    cmd = sandbox_command([sys.executable, "-I", "-c", CUDA_PROBE], run_dir, work_dir, memory_gb, cpu_seconds,
                          max_processes, max_file_mb, uid)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return [f"CUDA preflight: a 64x64 matrix product on the GPU did not finish within {timeout:g} s "
                "inside the sandbox"]
    finally:
        release(work_dir.name)
    if proc.returncode == 0 and "cuda ok" in proc.stdout:
        return []
    tail = (proc.stderr.strip().splitlines() or ["(no error output)"])[-1][:300]
    hints = []
    if not sorted(Path("/dev").glob("nvidia*")):
        hints.append("no /dev/nvidia* device on this machine (no GPU, or its driver is not loaded)")
    if memory_gb > 0:
        hints.append(f"the sandbox's address-space limit ({memory_gb:g} GiB, c.TrustedExecute.memory_gb) can "
                     "be too small for the CUDA runtime, which reserves large virtual ranges; raise it or set 0")
    return [f"CUDA preflight failed inside the sandbox (exit {proc.returncode}): {tail}. Possible causes: "
            + "; ".join(hints or ["see the error above"])
            + ". Fix the GPU setup, or grade on the CPU with CNNBOOK_GRADING_DEVICE=cpu"]
