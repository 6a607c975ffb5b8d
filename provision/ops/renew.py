"""`invoke tls.renew`: the control route's renewals and nothing else, for a cron job or a CI
schedule on the control machine. Each tls: acme proxy whose kept certificate is due (tls.acme_due)
gets a new one ordered (provision.certificates) and only its certificate and key installed, with
one reload; one that is not due is left alone, and mod_md renews its own.
"""
from __future__ import annotations

from .. import report, tls
from ..certificates import order
from ..engine import HostResult, prefetch
from ..facts import Facts
from ..inventory import InventoryError
from ..roles import proxy
from .session import open_run


def renew(inventory_path, limit: str | None = None, accept_new_host_keys: bool = False,
          prompt_for_sudo_password: bool = False, reporter=None) -> int:
    reporter = reporter or report.Reporter()
    try:
        inventory, options, connections = open_run(inventory_path, accept_new_host_keys, prompt_for_sudo_password)
        hosts = [h for h in inventory.select(limit) if proxy.GROUP in h.groups and tls.mode(h) == "acme"]
        options.tls = tls.prepare(inventory, hosts)
    except (InventoryError, tls.TLSError) as exc:
        reporter.info(f"error: {exc}")
        return 2
    if not hosts:
        reporter.info(f"{inventory.path}: no proxy with tls: acme{' in ' + limit if limit else ''}: nothing to renew")
        return 0
    results = []
    try:
        facts = prefetch({h.name: [proxy] for h in hosts}, hosts, inventory, options, connections, reporter)
        for host in hosts:
            results.append(_renew_one(host, facts[host.name], inventory, options, connections, reporter))
    finally:
        connections.close()
    merged = report.merge([{r.host: r for r in results}])
    reporter.recap(merged)
    return report.exit_code(merged)


def _renew_one(host, facts, inventory, options, connections, reporter) -> HostResult:
    result = HostResult(host.name)
    if not isinstance(facts, Facts):
        result.unreachable = str(facts) or type(facts).__name__
        reporter.unreachable(host.name, result.unreachable)
        return result
    if proxy.acme_route(host, facts.platform) == "mod_md":
        reporter.info(f"{host.name} | tls | mod_md renews this proxy's certificate itself: nothing to do here")
        return result
    if host.name not in options.tls:
        result.error = "no certificate yet: `invoke deploy` gets the first one"
        reporter.failed(host.name, "acme", result.error)
        return result
    why = tls.acme_due(inventory, host)
    if why is None:
        reporter.info(f"{host.name} | tls | not due: {tls.days_left(options.tls[host.name].cert)} days left, "
                      f"renewed within {tls.window_text(tls.renew_window(host))} of expiry")
        return result
    order(host, inventory, options, connections, reporter, result, role=proxy.CertificateOnly)
    return result
