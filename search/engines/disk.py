"""A search stops while its disk still has room, and says why.

Checkpoints, trial records, the study and Ray Tune's own state are written into the run directory
as a search goes. On a full disk each of those writes would fail its own way: a trial failed for
good, a half-written state (Ray Tune's state file is not written atomically). So the driver looks
at the free space between Ray Tune's steps, and below a reserve (a quarter of what a run needs to
start) it stops the search as Ctrl-C does: Ray Tune saves its state, the running trials keep their
last checkpoint, and ``resume`` continues them once space is freed.

A disk can also fill at once (another program's doing), before the next look. Then a trial, the
study or a write of the driver's meets the full disk first; each of those stops the search too
(the driver's write is left undone rather than raised). For the writes that stopping needs, the
search holds some space of its own while it runs, a file in the run directory that it deletes as
it stops.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from search.rundir.directory import min_free_bytes

__all__ = ["DiskGuard", "NO_SPACE", "disk_full"]

NO_SPACE = os.strerror(errno.ENOSPC)  # "No space left on device", as a failed write reports it
RESERVE_SHARE = 4  # stop below a quarter of the free space a run needs to start
HELD_FILE = ".disk-reserve"  # in the run directory while a search runs: room for its last writes
HELD_MAX = 8 * 2**20  # Ray Tune's state, the records and the study of a search fit in far less


def disk_full(error: BaseException) -> bool:
    """Whether ``error`` is a write that failed on a full disk (a file's, or SQLite's through Optuna)."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return True
    text = f"{error} {error.__cause__}"
    return "database or disk is full" in text or NO_SPACE in text


class DiskGuard:
    """Stops the search in this process when the disk holding ``run_dir`` runs low."""

    def __init__(self, run_dir: Path, progress: Callable[[str], None], *, every_s: float = 1.0):
        self.run_dir, self.progress, self.every_s = Path(run_dir), progress, every_s
        self.reserve = min_free_bytes() // RESERVE_SHARE
        self.checked = 0.0
        self.stopping = False

    def hold(self) -> None:
        """Take the room the search's last writes need (the reserve, up to HELD_MAX), while it runs."""
        held = self.run_dir / HELD_FILE
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            with held.open("wb") as f:
                f.write(b"\0" * min(self.reserve, HELD_MAX))
        except OSError as exc:
            held.unlink(missing_ok=True)
            if not disk_full(exc):
                raise
            self._stop("there is no room for the space a search holds for its last writes")

    def release(self) -> None:
        """Give back the room :meth:`hold` took."""
        (self.run_dir / HELD_FILE).unlink(missing_ok=True)

    def check(self) -> None:
        """Stop the search if the disk has less than the reserve free (looked at once a second at most)."""
        now = time.monotonic()
        if self.stopping or now - self.checked < self.every_s:
            return
        self.checked = now
        free = shutil.disk_usage(self.run_dir).free
        if free < self.reserve:
            self._stop(f"the disk holding {self.run_dir} has {free / 2**20:.1f} MiB free, less than the "
                       f"{self.reserve / 2**20:.0f} MiB a search keeps in reserve")

    def trial_failed(self, reason: str | None) -> None:
        """Stop the search if a trial failed because its disk was full."""
        if reason and NO_SPACE in reason:
            self._stop(f"a trial could not write to its disk ({reason})")

    def study_failed(self, error: Exception) -> bool:
        """Stop the search if the study could not be written because its disk was full; whether it was."""
        if not disk_full(error):
            return False
        self._stop("the study could not be written (its disk is full)")
        return True

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Around one of the driver's writes: a full disk stops the search instead of raising. The write is left
        undone; the resumed search writes it again."""
        try:
            yield
        except OSError as exc:
            if not disk_full(exc):
                raise
            self._stop(f"writing to {self.run_dir} failed ({exc.strerror})")

    def _stop(self, why: str) -> None:
        """Stop the search, once: the first full-disk event says why, the ones after it change nothing."""
        if self.stopping:
            return
        self.stopping = True
        self.release()  # room for Ray Tune's state, the records and the study as the search stops
        self.progress(f"Stopping the search: {why}. Free some space, then resume it.")
        if threading.current_thread() is threading.main_thread():
            os.kill(os.getpid(), signal.SIGINT)  # Ray Tune's own Ctrl-C: it saves its state and ends the run
        else:  # Ray Tune handles signals only in the main thread; elsewhere it stops as at an interrupt
            raise KeyboardInterrupt(why)
