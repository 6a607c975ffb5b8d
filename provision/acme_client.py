"""The control machine's ACME client (RFC 8555), for tls: acme's control route: certbot's own
protocol library (the `acme` package) does the protocol; this module only drives one order. It
talks to the CA and nothing else: the HTTP-01 answers reach the proxy through the callbacks the
caller gives (provision.certificates puts them there over SSH). No other module talks to a CA.

Every failure is an AcmeError naming the DNS name concerned and the CA's own words.
"""
from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Callable

import josepy
import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography.hazmat.primitives import serialization

USER_AGENT = "provision"
ORDER_TIMEOUT = 90      # s: the CA validates and issues within this, or the order is given up
NETWORK_TIMEOUT = 20    # s, each request


class AcmeError(Exception):
    """One order failed: the name it failed for and the CA's (or the network's) words."""

    def __init__(self, name: str, text: str):
        self.name, self.text = name, " ".join(str(text).split())
        super().__init__(f"{name}: {self.text}")


@dataclass(frozen=True)
class Challenge:
    """An HTTP-01 answer: the file `token` under /.well-known/acme-challenge/ must hold `content`."""
    name: str
    token: str
    content: str = ""       # the key authorization (not secret: the CA fetches it over plain HTTP)


def obtain(directory: str, account_key_pem: bytes, email: str, names: tuple[str, ...], key_pem: bytes,
           publish: Callable[[list[Challenge]], None], withdraw: Callable[[list[Challenge]], None],
           ca_bundle: str | None = None, timeout: float = ORDER_TIMEOUT) -> bytes:
    """Order a certificate for `names` with the key `key_pem`, answering HTTP-01 through publish
    (before the CA is asked to validate) and withdraw (always, after). Returns the full chain (PEM)."""
    where = names[0]
    try:
        key = josepy.JWKRSA(key=serialization.load_pem_private_key(account_key_pem, password=None))
        net = client.ClientNetwork(key, user_agent=USER_AGENT, verify_ssl=ca_bundle or True,
                                   timeout=NETWORK_TIMEOUT)
        ca = client.ClientV2(client.ClientV2.get_directory(directory, net), net)
        _register(ca, email)
        order = ca.new_order(crypto_util.make_csr(key_pem, list(names)))
        answers = _answers(order, key)
        published = False
        try:
            if answers:
                publish([a for a, _ in answers])
                published = True
                for answer, challb in answers:
                    where = answer.name
                    ca.answer_challenge(challb, challb.response(key))
            where = names[0]
            deadline = datetime.datetime.now() + datetime.timedelta(seconds=timeout)
            done = ca.poll_and_finalize(order, deadline)
        finally:
            if published:
                withdraw([a for a, _ in answers])
        return done.fullchain_pem.encode()
    except errors.ValidationError as exc:
        raise _validation(exc, where) from None
    except errors.IssuanceError as exc:
        raise AcmeError(where, _problem(exc.error)) from None
    except messages.Error as exc:
        raise AcmeError(_identifier(exc) or where, _problem(exc)) from None
    except errors.TimeoutError:
        raise AcmeError(where, f"the CA did not validate and issue within {timeout:.0f} s") from None
    except requests.exceptions.SSLError as exc:
        raise AcmeError(where, f"{directory}: TLS: {_reason(exc)} (acme_directory_ca names the CA "
                               "that signs the directory's certificate)") from None
    except requests.exceptions.RequestException as exc:
        raise AcmeError(where, f"{directory}: {_reason(exc)}") from None
    except errors.Error as exc:
        raise AcmeError(where, str(exc) or type(exc).__name__) from None


def _register(ca: client.ClientV2, email: str) -> None:
    """The account of this key: new, or the one the CA already has for it (RFC 8555 §7.3.1)."""
    registration = messages.NewRegistration.from_data(email=email, terms_of_service_agreed=True)
    try:
        ca.new_account(registration)
    except errors.ConflictError as exc:
        ca.net.account = messages.RegistrationResource(uri=exc.location, body=messages.Registration())


def _answers(order: messages.OrderResource, key) -> list:
    """(Challenge, its HTTP-01 challenge body) for every authorization still pending."""
    found = []
    for authz in order.authorizations:
        if authz.body.status == messages.STATUS_VALID:
            continue
        name = authz.body.identifier.value
        http01 = [c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01)]
        if not http01:
            raise AcmeError(name, "the CA offers no http-01 challenge for this name")
        challb = http01[0]
        found.append((Challenge(name, challb.chall.encode("token"), challb.chall.validation(key)), challb))
    return found


def _problem(error: messages.Error | None) -> str:
    if error is None:
        return "the order failed and the CA gave no reason"
    text = error.detail or error.title or error.typ
    return f"{text} ({error.code})" if error.code else text


def _identifier(error: messages.Error) -> str | None:
    value = getattr(error, "identifier", None)
    return getattr(value, "value", None)


def _validation(exc: errors.ValidationError, where: str) -> AcmeError:
    for authz in exc.failed_authzrs:
        for challb in authz.body.challenges:
            if challb.error is not None:
                return AcmeError(authz.body.identifier.value, _problem(challb.error))
    return AcmeError(where, "validation failed and the CA gave no reason")


def _reason(exc: Exception) -> str:
    """The innermost cause of a requests error, without urllib3's object reprs."""
    text = re.sub(r"\s*\(_ssl\.c:\d+\)", "", str(exc))
    for marker in ("Caused by ", "] "):
        if marker in text:
            text = text.rsplit(marker, 1)[-1]
    return text.strip("()'\" ") or type(exc).__name__
