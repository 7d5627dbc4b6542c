"""One render per output folder at a time: ``<out>/.cinekit.lock``.

The lock is an ``flock`` on the lock file, so the kernel releases it when its process dies,
whatever the death (SIGKILL included): a lock left by a dead process is simply taken over,
and a recycled PID can never keep a folder locked. The file also holds the holder's PID,
host, command and start time, for the message the second render prints (it fails at once,
or with ``wait=True`` polls until the first one is done). Where ``fcntl`` does not exist
(Windows) the lock falls back to an exclusive create plus a check that the recorded PID is
still alive.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable

from cinekit.errors import UserError

LOCK_NAME = ".cinekit.lock"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def describe(holder: dict[str, Any] | None) -> str:
    if not holder or "pid" not in holder:
        return "another process (its PID is not recorded yet)"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
    return f"PID {holder['pid']} on {holder.get('host', '?')} (`{holder.get('command', '?')}`, since {started})"


class FolderLock:
    """``with FolderLock(out_dir, wait=False): ...`` around everything that writes into out_dir."""

    def __init__(self, folder: Path, *, wait: bool = False, timeout: float | None = None, poll: float = 0.2,
                 on_wait: Callable[[dict[str, Any] | None], None] | None = None):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.wait, self.timeout, self.poll, self.on_wait = wait, timeout, poll, on_wait
        self.fd: int | None = None
        self.took_over: dict[str, Any] | None = None  # the dead holder whose lock was taken over

    def _info(self) -> bytes:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:200]}
        return json.dumps(info).encode()

    def read_holder(self) -> dict[str, Any] | None:
        for _ in range(5):  # the holder writes its info right after taking the lock
            try:
                data = json.loads(self.path.read_bytes() or b"null")
                if isinstance(data, dict):
                    return data
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        return None

    def _busy(self, holder: dict[str, Any] | None, waited: bool, start: float) -> None:
        if not self.wait:
            raise UserError(f"{self.folder} is locked by another render: {describe(holder)}",
                            hint="wait for it to finish (or pass --wait), or render into another folder with --out")
        if self.timeout is not None and time.monotonic() - start > self.timeout:
            raise UserError(f"gave up waiting for {self.folder}: still locked by {describe(holder)}")
        if not waited and self.on_wait is not None:
            self.on_wait(holder)
        time.sleep(self.poll)

    def acquire(self) -> "FolderLock":
        try:
            return self._acquire()
        except OSError as exc:  # a read-only or missing-permission folder is the user's to fix, not a crash
            raise UserError(f"cannot write into {self.folder}: {exc.strerror or exc}",
                            hint="check the folder's permissions, or render into another folder with --out") from None

    def _acquire(self) -> "FolderLock":
        self.folder.mkdir(parents=True, exist_ok=True)
        start, waited = time.monotonic(), False
        while True:
            if fcntl is None:  # pragma: no cover - Windows
                if self._acquire_exclusive():
                    return self
                if self.took_over is not None:
                    continue
            else:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                else:
                    try:
                        same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
                    except FileNotFoundError:
                        same = False
                    if same:  # not a file its previous holder unlinked meanwhile
                        previous = os.read(fd, 4096)
                        try:
                            old = json.loads(previous) if previous else None
                        except ValueError:
                            old = None
                        if isinstance(old, dict) and old.get("pid") != os.getpid():
                            self.took_over = old
                        os.ftruncate(fd, 0)
                        os.pwrite(fd, self._info(), 0)
                        self.fd = fd
                        return self
                    os.close(fd)
                    continue
            self._busy(self.read_holder(), waited, start)
            waited = True

    def _acquire_exclusive(self) -> bool:  # pragma: no cover - Windows fallback
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = self.read_holder()
            if holder and holder.get("host") == socket.gethostname() and not _pid_alive(int(holder.get("pid", 0))):
                self.took_over = holder
                self.path.unlink(missing_ok=True)
                return False
            return False
        os.write(fd, self._info())
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still holding the lock: no one holds the unlinked inode
        finally:
            os.close(self.fd)  # closing releases the flock
            self.fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
