"""An unreachable host is one line in plain words, whatever paramiko raised."""
import socket

import paramiko
import pytest

from provision.transport import Unreachable, _unreachable


def banner_error(cause: BaseException) -> paramiko.SSHException:
    try:
        try:
            raise cause
        except BaseException:
            raise paramiko.SSHException("Error reading SSH protocol banner")
    except paramiko.SSHException as exc:
        return exc


@pytest.mark.parametrize("exc,words", [
    (banner_error(socket.timeout()), "no SSH banner from 10.0.0.5:22 within 10 s (it accepts TCP but does not "
                                     "answer as sshd)"),
    (banner_error(EOFError()), "10.0.0.5:22 closed the connection without an SSH banner"),
    (paramiko.SSHException("No existing session"), "10.0.0.5:22 ended the SSH session during the handshake"),
    (paramiko.AuthenticationException("Authentication failed."),
     "10.0.0.5:22 refused the login: no key or agent identity was accepted"),
    (paramiko.ssh_exception.NoValidConnectionsError({("10.0.0.5", 22): ConnectionRefusedError(111, "refused")}),
     "cannot connect to 10.0.0.5:22: connection refused"),
    (socket.timeout("timed out"), "no answer from 10.0.0.5:22 within 10 s (TCP connect timed out)"),
    (OSError(113, "No route to host"), "cannot connect to 10.0.0.5:22: no route to host"),
])
def test_plain_words(exc, words):
    found = _unreachable(exc, "10.0.0.5", 22, {}, 10)
    assert isinstance(found, Unreachable) and str(found) == words
    assert "No existing session" not in str(found) and "\n" not in str(found)
