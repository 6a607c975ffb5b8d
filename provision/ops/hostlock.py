"""Shell text that takes the host's provision lock (the one applies take) for the rest of a script."""
from __future__ import annotations

from ..apply import HOST_LOCK


def take(seconds: int = 60) -> str:
    """flock(1) from util-linux, on every supported OS. A user who cannot write the lock file
    opens it read-only (flock(2) needs no write access). Tested first: a failed redirection on
    exec ends a POSIX shell such as dash."""
    folder = HOST_LOCK.rsplit("/", 1)[0]
    return (f"if [ -w {HOST_LOCK} ] || {{ [ ! -e {HOST_LOCK} ] && [ -w {folder} ]; }}; "
            f"then exec 9>>{HOST_LOCK}; elif [ -r {HOST_LOCK} ]; then exec 9<{HOST_LOCK}; "
            f"else echo 'cannot open {HOST_LOCK}' >&2; exit 3; fi\n"
            f"flock -w {seconds} 9 || {{ echo 'another provision run holds {HOST_LOCK} on this host' >&2; exit 3; }}\n")
