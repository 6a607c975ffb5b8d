"""What every day-2 command starts from: the inventory (with -e), one connection per host with the
same host-key and sudo handling as deploy, and the per-host run that recaps on Ctrl-C."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed

from ..engine import Connections, Options, take_sudo_password
from ..errors import UserError
from ..interrupt import recap_on_interrupt
from ..inventory import load


class OpsError(UserError):
    pass


def open_run(sources, extra_vars=(), accept_new_host_keys: bool = False, sudo_password: str | None = None,
             forks: int = 20, trace=None):
    """(inventory, options, connections). The sudo password comes from -K (asked by the command
    line) or the environment, as for deploy, and is never printed."""
    from_env = take_sudo_password()         # before an inventory script can run
    inventory = load(sources, extra_vars)
    password = sudo_password or from_env
    options = Options(forks=int(forks), accept_new_host_keys=accept_new_host_keys, sudo_password=password,
                      trace=trace)
    return inventory, options, Connections(options)


def each_host(hosts, one, forks: int, last_words) -> list:
    """one(host) for every host, ``forks`` at a time; the results in the hosts' order. On Ctrl-C,
    ``last_words(done)`` (host name -> result, for the hosts finished so far), then exit 130."""
    done: dict = {}
    with recap_on_interrupt(lambda: last_words(dict(done))):
        with ThreadPoolExecutor(max_workers=max(1, min(forks, len(hosts) or 1))) as pool:
            running = {pool.submit(one, h): h.name for h in hosts}
            for future in as_completed(running):
                done[running[future]] = future.result()
    return [done[h.name] for h in hosts]


def interrupted_recap(hosts, done: dict, word, stream) -> None:
    """An interrupted day-2 command's last words: each host's word (``word(result)``) or
    `interrupted` for the hosts still running."""
    print("\nINTERRUPTED\nRECAP", file=stream)
    for h in hosts:
        print(f"{h.name} {word(done[h.name]) if h.name in done else 'interrupted'}", file=stream)
    stream.flush()


def ssh_counts(connections) -> dict:
    return {name: {"connections": c.connections, "execs": c.execs, "uploads": c.uploads}
            for name, c in connections.all().items()}
