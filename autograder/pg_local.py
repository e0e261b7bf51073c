"""A throwaway PostgreSQL server in a folder: a rehearsal of a class on PostgreSQL, the benchmark, the tests.

Debian's server binaries (``apt-get install postgresql``, ``make postgres``) run as a non-root user (initdb
refuses root: as root the server runs as the ``postgres`` or ``nobody`` account), listen on 127.0.0.1 only
with trust authentication, and keep everything in a temporary folder removed when the server stops. Not for a real class: that
gradebook lives on the university's managed PostgreSQL (book/autograder_guide.md).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PostgresUnavailable(RuntimeError):
    """The server binaries or an account to run them are missing."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unprivileged_user() -> str:
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name).pw_name
        except KeyError:
            continue
    raise PostgresUnavailable("running as root, and neither a 'postgres' nor a 'nobody' account exists to run "
                              "PostgreSQL (initdb refuses root)")


class LocalPostgres:
    """initdb + pg_ctl in a fresh temporary folder (removed by :meth:`stop`); :meth:`create` makes a
    database and returns its URL. The folder is made directly under the system's temporary directory, which
    the server's account can reach (pytest's and ``TemporaryDirectory``'s folders are private to root)."""

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            raise PostgresUnavailable(f"PostgreSQL server binaries are not installed ({PG_BIN}/initdb): "
                                      "`make postgres` (apt-get install postgresql)")
        self.user = None if os.geteuid() else _unprivileged_user()
        self.folder, self.port = Path(tempfile.mkdtemp(prefix="cnnbook-pg-")), free_port()
        os.chmod(self.folder, 0o700)
        if self.user:
            shutil.chown(self.folder, self.user)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(PG_BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=120,
                              user=self.user, cwd=self.folder)
        if proc.returncode:
            raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def start(self) -> "LocalPostgres":
        data = self.folder / "data"
        self._run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self._run("pg_ctl", "-D", str(data), "-l", str(self.folder / "log"), "-w", "-o",
                  f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1", "start")
        return self

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def create(self, name: str) -> str:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def __enter__(self) -> "LocalPostgres":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
