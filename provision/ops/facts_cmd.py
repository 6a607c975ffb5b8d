"""`provision facts PATTERN`: the facts the deploy gathers for a host, as JSON named the way
``ansible -m setup`` names them (ansible_os_family, ansible_distribution_version, ...), plus
provision's own (Apache modules, packages, units, files)."""
from __future__ import annotations

import json
import sys

from .. import facts as factlib
from .. import report, tls
from ..engine import fact_request, gather
from ..transport import Unreachable
from .session import OpsError, each_host, interrupted_recap, open_run
from .status import roles_of


def as_setup(facts: factlib.Facts) -> dict:
    """Pure: Facts -> ansible-style names."""
    os_release = facts.os
    return {
        "ansible_os_family": "Debian" if facts.family == "debian" else "RedHat",
        "ansible_distribution": os_release.get("NAME", ""),
        "ansible_distribution_version": os_release.get("VERSION_ID", ""),
        "ansible_distribution_major_version": os_release.get("VERSION_ID", "").split(".")[0],
        "ansible_distribution_release": os_release.get("VERSION_CODENAME", ""),
        "ansible_architecture": facts.arch,
        "ansible_python": {"version": dict(zip(("major", "minor", "micro"), facts.python or ()))},
        "ansible_selinux": {"status": "disabled" if facts.selinux in (None, "Disabled") else "enabled",
                            "mode": (facts.selinux or "").lower()},
        "ansible_pkg_mgr": "apt" if facts.family == "debian" else "yum",
        "provision_apache": {
            "service": facts.platform.apache_service,
            "modules_enabled": sorted(facts.apache_modules),
            "load_modules": dict(sorted(facts.load_modules.items())),
        },
        "provision_packages": dict(sorted(facts.packages.items())),
        "provision_units": facts.units,
        "provision_files": {p: vars(s) for p, s in sorted(facts.files.items())},
        "provision_users": sorted(facts.users),
        "provision_firewalld": {"running": facts.firewalld, "services": sorted(facts.firewalld_services),
                                "ports": sorted(facts.firewalld_ports)},
        "provision_sebools": facts.sebools,
        "provision_pending_handlers": sorted(facts.pending),
    }


def main(sources, pattern: str, accept_new_host_keys=False, sudo_password=None, forks=20, extra_vars=(),
         json_path=None, trace=None, stream=None, errors=None) -> int:
    """The facts of every host the pattern names, as one JSON object on ``stream``; a host that
    could not be read is one line on ``errors`` (stderr)."""
    stream = stream or sys.stdout
    errors = errors or sys.stderr
    inventory, options, connections = open_run(sources, extra_vars, accept_new_host_keys, sudo_password, forks,
                                               trace)
    hosts = inventory.pick(pattern, "facts")
    for host in hosts:
        if not roles_of(host):
            raise OpsError(f"{inventory.path}: host {host.name!r} is in neither 'proxies' nor 'backends'")
    options.tls = tls.prepare(inventory, [h for h in hosts if "proxies" in h.groups], save=False)

    def one(host):
        request = factlib.FactRequest()
        for role in roles_of(host):
            request = request.merge(fact_request(role, host, inventory, options))
        try:
            return {"status": "ok", "ansible_facts": as_setup(gather(connections.get(host), request)),
                    "changed": False}
        except Unreachable as exc:
            return {"status": "unreachable", "error": str(exc)}
        except Exception as exc:        # one host's trouble never hides the others
            return {"status": "failed", "error": str(exc) or type(exc).__name__}

    def last_words(done):
        interrupted_recap(hosts, done, lambda r: r["status"], errors)
    try:
        found = dict(zip([h.name for h in hosts], each_host(hosts, one, options.forks, last_words)))
    finally:
        connections.close()
    for name, r in found.items():
        if r["status"] != "ok":
            print(f"{name} | {r['status']} | {r['error']}", file=errors)
    shown = {name: {k: v for k, v in r.items() if k != "status"} for name, r in found.items() if r["status"] == "ok"}
    if shown:
        print(json.dumps(shown, indent=2), file=stream)
    words = {r["status"] for r in found.values()}
    code = report.exit_for("failed" in words, "unreachable" in words)
    if json_path:
        report.write_json(json_path, report.document("facts", found, code))
    return code
