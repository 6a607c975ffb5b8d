"""Shell text that takes the host's provision lock (the one applies take) for the rest of a script."""
from __future__ import annotations

from ..apply import HOST_LOCK


def take(seconds: int = 60) -> str:
    """flock(1) from util-linux, on every supported OS. A user who cannot create the lock file
    opens it read-only: flock(2) needs no write access."""
    return (f"{{ exec 9>>{HOST_LOCK}; }} 2>/dev/null || exec 9<{HOST_LOCK} || exit 3\n"
            f"flock -w {seconds} 9 || {{ echo 'another provision run holds {HOST_LOCK} on this host' >&2; exit 3; }}\n")
