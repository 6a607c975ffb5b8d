"""Values written into an OpenSSH client config (ssh_config(5)), quoted as OpenSSH reads them.

OpenSSH splits a config line into words at whitespace, honours double quotes, and (since 8.7)
backslash escapes; a '#' starts a comment and a newline ends the line. Keywords such as
IdentityFile and ControlPath expand %-tokens. A value is written bare when it is plain, in double
quotes otherwise; a character no quoting can carry (control characters, '"' and '\\') is refused,
so that no value can ever add a line or an option (ProxyCommand runs commands).
"""
from __future__ import annotations

import os
import re
import stat

from .errors import UserError

PLAIN = re.compile(r"[A-Za-z0-9_.,:/@+=~\[\]*?!-]+")
UNQUOTABLE = re.compile(r'[\x00-\x1f\x7f"\\]')
# ssh_config(5) "TOKENS": the keywords we write that expand %-tokens (and ${ENV} since 8.4).
EXPANDS_TOKENS = {"identityfile", "controlpath", "userknownhostsfile", "hostname"}


class SshConfigValueError(UserError):
    """A value that cannot be written into an ssh_config line."""


def value(keyword: str, text, where: str = "") -> str:
    """``text`` as one ssh_config word for ``keyword``; ``where`` names its origin in errors."""
    text = str(text)
    bad = UNQUOTABLE.search(text)
    if bad or not text:
        what = f"character {bad.group()!r}" if bad else "an empty value"
        raise SshConfigValueError(f"{where + ': ' if where else ''}{keyword} {text!r}: {what} cannot go "
                                  "into an ssh_config line")
    if keyword.lower() in EXPANDS_TOKENS:
        text = text.replace("%", "%%")
        if "${" in text:
            raise SshConfigValueError(f"{where + ': ' if where else ''}{keyword} {text!r}: '${{' would be "
                                      "expanded by OpenSSH")
    return text if PLAIN.fullmatch(text) else f'"{text}"'


def line(keyword: str, text, where: str = "", indent: str = "    ") -> str:
    return f"{indent}{keyword} {value(keyword, text, where)}"


KINDS = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder"),
         (stat.S_ISFIFO, "a pipe"), (stat.S_ISSOCK, "a socket"))


def known_hosts_problem(path: str) -> str | None:
    """Why ``path`` cannot serve as a known_hosts file, or None. It may be missing (an accepted key
    creates it), but if it exists it must be a regular file (a link to one is fine): /dev/null
    with accept-new is the usual stand-in for StrictHostKeyChecking=no, every key accepted, none
    remembered."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"known_hosts {path} cannot be read: {exc.strerror}"
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in KINDS if test(mode)), "not a regular file")
    return (f"known_hosts {path} is {kind}, not a regular file: host keys could be neither checked "
            "nor remembered")
