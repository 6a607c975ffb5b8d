"""A deploy spread over worker processes, so that the control machine uses every core: SSH
(paramiko's packets, its crypto calls, parsing) runs in Python, which one core bounds per process.

Each worker is forked once the run is planned (inventory, TLS material, rendered templates and
the SSH stack are loaded: the workers share them) and converges its share of the hosts with its
own connections and its share of ``--forks``. The parent only relays: the board's events (a
backend done in one worker opens the switch of a proxy in another), the reporter's calls (one
process prints, in order), and at the end each worker's results, merged into the phases' host
order, so that the recap, --json and the exit code are those of one process.

A worker ignores Ctrl-C (the parent prints the recap of what it knows, then exits) and ends
when the parent's end of its pipe closes.
"""
from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import threading
import traceback
from multiprocessing.connection import wait

from .engine import Board, HostResult

def shares(names: list[str], workers: int) -> list[set[str]]:
    """The hosts of each worker: dealt in turn, in the run's order (backends, then proxies)."""
    return [set(names[i::workers]) for i in range(workers)]


def split_forks(forks: int, workers: int) -> list[int]:
    """``--forks`` shared out: it stays the total."""
    return [forks // workers + (i < forks % workers) for i in range(workers)]


class _Forward:
    """A worker's reporter: every call goes to the parent's, with a copy of the host's result so
    far (so that an interrupted run's recap in the parent shows it)."""

    def __init__(self, send):
        self._send = send
        self._results: dict[str, HostResult] = {}

    def track(self, result: HostResult):
        self._results[result.host] = result
        self._send(("report", "track", (result.host,), {}, None))

    def __getattr__(self, name):
        def call(*args, **kwargs):
            tracked = self._results.get(args[0]) if args and isinstance(args[0], str) else None
            snapshot = dataclasses.replace(tracked, steps=list(tracked.steps)) if tracked else None
            self._send(("report", name, args, kwargs, snapshot))
        return call


def _worker(own, others, run, owned: set[str], forks: int):
    """In the child: converge ``owned`` with ``run(owned, forks, board, reporter)``; send the result."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for other in others:            # inherited at fork: only the parent may hold them
        other.close()
    lock = threading.Lock()

    def send(message):
        with lock:
            own.send(message)

    board = Board(publish=lambda event: send(("board", event)))

    def listen():
        try:
            while True:
                kind, event = own.recv()
                if kind == "board":
                    board.apply_event(event)
        except (EOFError, OSError):     # the parent is gone: so is this run
            os._exit(130)
    threading.Thread(target=listen, daemon=True).start()
    try:
        send(("result", run(owned, forks, board, _Forward(send))))
    except BaseException:       # the parent reports it on this worker's hosts
        send(("error", traceback.format_exc(limit=5)))


def spread(names: list[str], workers: int, forks: int, run, reporter) -> list:
    """Run ``run(owned, forks, board, reporter)`` in ``workers`` forked processes, each on its
    share of ``names``; returns each worker's result (or the text of the error that ended it)."""
    context = multiprocessing.get_context("fork")
    owned = shares(names, workers)
    pipes = [context.Pipe() for _ in range(workers)]
    processes = []
    for i, ((parent_end, child_end), share, n) in enumerate(zip(pipes, owned, split_forks(forks, workers))):
        others = [end for j, pair in enumerate(pipes) for end in pair if end is not child_end]
        process = context.Process(target=_worker, args=(child_end, others, run, share, n), daemon=True)
        process.start()
        processes.append(process)
    for _, child_end in pipes:
        child_end.close()
    ends = {parent_end: i for i, (parent_end, _) in enumerate(pipes)}
    results: list = [None] * workers
    mirror: dict[str, HostResult] = {}
    live = dict(ends)
    while live:
        for end in wait(list(live)):
            try:
                message = end.recv()
            except (EOFError, OSError):
                i = live.pop(end)
                if results[i] is None:
                    processes[i].join(10)
                    results[i] = f"worker process {i + 1} ended without a result (exit {processes[i].exitcode})"
                    # whoever waits for its hosts (a proxy for its backends) hears that they failed
                    for name in sorted(owned[i]):
                        _tell(live, ("board", ("done", name, "failed (its worker process ended)")))
                continue
            kind = message[0]
            if kind == "board":
                _tell([other for other in live if other is not end], message)
            elif kind == "report":
                _relay(reporter, mirror, *message[1:])
            else:
                results[live[end]] = message[1]
    for process in processes:
        process.join()
    return results


def _tell(ends, message) -> None:
    for end in ends:
        try:
            end.send(message)
        except OSError:     # it ended meanwhile: it needs no more news
            pass


def _relay(reporter, mirror: dict[str, HostResult], name: str, args, kwargs, snapshot):
    if name == "track":
        mirror[args[0]] = HostResult(args[0])
        reporter.track(mirror[args[0]])
        return
    if snapshot is not None and snapshot.host in mirror:
        vars(mirror[snapshot.host]).update(vars(snapshot))
    getattr(reporter, name)(*args, **kwargs)
