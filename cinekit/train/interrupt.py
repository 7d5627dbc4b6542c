"""Stop a training run cleanly on Ctrl-C (SIGINT) or SIGTERM (a farm's scheduler stopping a job).

The default reactions lose work: SIGINT raises ``KeyboardInterrupt`` wherever the step happens
to be (a half-applied optimizer step cannot be saved), SIGTERM kills the process outright. While
the loop runs, both only set a flag; the loop finishes the step it is in, saves a checkpoint of
it and returns (``LoopResult.interrupted``), and the CLI exits 128 + the signal (130 / 143).
A second Ctrl-C during a long step is an impatient user: it raises ``KeyboardInterrupt`` at once
(the run then resumes from the last periodic checkpoint).
"""

from __future__ import annotations

import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Context manager: ``.signum`` is the first SIGINT/SIGTERM received inside it (None before).

    Signal handlers can only be set from the main thread; elsewhere (a server's worker thread)
    this does nothing and the defaults stay."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict = {}

    def _handle(self, signum, frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = self.signum or signum

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old.clear()


def exit_code(signum: int) -> int:
    """The shell's convention for a process ended by a signal: 128 + its number (130, 143)."""
    return 128 + int(signum)
