"""`provision tls.renew`: the control route's renewals and nothing else, for a cron job or a CI
schedule on the control machine. Each tls: acme proxy whose kept certificate is due (tls.acme_due)
gets a new one ordered (provision.certificates) and only its certificate and key installed, with
one reload; one that is not due is left alone, and mod_md renews its own.

The contract is every command's: bad input (inventory, -e, --limit, no tls: acme proxy chosen, the
TLS store) raises a UserError before any connection; 2 a proxy failed, 4 one could not be reached
and none failed, 130 after the recap on Ctrl-C.
"""
from __future__ import annotations

from .. import report, tls
from ..certificates import label, order
from ..engine import HostLocked, HostResult, StepResult, prefetch
from ..facts import Facts
from ..interrupt import recap_on_interrupt
from ..roles import proxy
from ..transport import Unreachable
from .session import OpsError, open_run, ssh_counts


def chosen(hosts) -> list:
    """The proxies with tls: acme among ``hosts``: the ones tls.renew acts on."""
    return [h for h in hosts if proxy.GROUP in h.groups and tls.mode(h) == "acme"]


def main(sources, limit: str | None = None, accept_new_host_keys=False, sudo_password=None, forks=20,
         extra_vars=(), json_path=None, trace=None, reporter=None) -> int:
    """0 every due certificate renewed (or none due); 2 a proxy failed; 4 one could not be
    reached and none failed; 130 interrupted."""
    reporter = reporter or report.Reporter()
    inventory, options, connections = open_run(sources, extra_vars, accept_new_host_keys, sudo_password, forks,
                                               trace)
    hosts = chosen(inventory.select(limit))
    if not hosts:
        raise OpsError(f"{inventory.path}: no proxy has tls: acme{' in --limit ' + repr(limit) if limit else ''}: "
                       "nothing to renew")
    options.tls = tls.prepare(inventory, hosts)
    results = [HostResult(h.name) for h in hosts]
    # First Ctrl-C: the recap of what is known, the hosts mid-apply, then exit 130.
    try:
        with recap_on_interrupt(reporter.interrupted):
            facts = prefetch({h.name: [proxy] for h in hosts}, hosts, inventory, options, connections, reporter)
            for host, result in zip(hosts, results):
                reporter.track(result)
                _renew_one(host, facts[host.name], inventory, options, connections, reporter, result)
    finally:
        connections.close()
    reporter.recap(results)
    code = report.exit_code(results)
    if json_path:
        report.write_json(json_path, report.to_json(results, {"ssh": ssh_counts(connections)}, command="tls.renew"))
    return code


def _renew_one(host, facts, inventory, options, connections, reporter, result: HostResult) -> None:
    try:
        if isinstance(facts, Exception):
            raise facts
        _renew(host, facts, inventory, options, connections, reporter, result)
    except Unreachable as exc:
        result.unreachable = str(exc)
        reporter.unreachable(host.name, result.unreachable)
    except HostLocked as exc:
        result.error = str(exc)
        reporter.failed(host.name, "lock", result.error)
    except Exception as exc:        # one proxy's trouble never stops the others
        result.error = f"{type(exc).__name__}: {exc}"
        reporter.failed(host.name, "acme", result.error)
    finally:
        reporter.progress(host.name, None)


def _renew(host, facts: Facts, inventory, options, connections, reporter, result: HostResult) -> None:
    if proxy.acme_route(host, facts.platform) == "mod_md":
        _nothing(host, reporter, result, "mod_md renews this proxy's certificate itself: nothing to do here")
    elif host.name not in options.tls:
        result.error = "no certificate yet: `provision deploy` gets the first one"
        reporter.failed(host.name, "acme", result.error)
    elif tls.acme_due(inventory, host) is None:
        _nothing(host, reporter, result, f"not due: {tls.days_left(options.tls[host.name].cert)} days left, "
                                         f"renewed within {tls.window_text(tls.renew_window(host))} of expiry")
    else:
        reporter.progress(host.name, "ordering a certificate")
        order(host, inventory, options, connections, reporter, result, role=proxy.CertificateOnly)


def _nothing(host, reporter, result: HostResult, why: str) -> None:
    result.steps.append(StepResult(label(host), "ok", why))
    reporter.info(f"{host.name} | tls | {why}")
