"""Ctrl-C during a run: the run's last words (a recap of what is known), then exit 130 at once.

Worker threads sit in SSH waits, so there is no clean unwinding to wait for; a detached apply
script runs on to its end on its host either way. A second Ctrl-C while the recap prints exits
at once. Off the main thread (where signals cannot be handled) nothing is installed.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

INTERRUPTED = 130


@contextlib.contextmanager
def recap_on_interrupt(last_words):
    """While the block runs, the first SIGINT calls ``last_words()`` and exits 130."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def at_once(signum, frame):
        os._exit(INTERRUPTED)

    def first(signum, frame):
        signal.signal(signal.SIGINT, at_once)
        try:
            last_words()
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):     # a closed or broken pipe: nothing more to say
                    pass
            os._exit(INTERRUPTED)
    previous = signal.signal(signal.SIGINT, first)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
