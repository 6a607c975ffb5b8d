"""`invoke facts HOST`: the facts the deploy gathers for a host, as JSON named the way
``ansible -m setup`` names them (ansible_os_family, ansible_distribution_version, ...), plus
provision's own (Apache modules, packages, units, files)."""
from __future__ import annotations

import json
import sys

from .. import facts as factlib
from .. import tls
from ..engine import fact_request, gather
from .session import OpsError, find_host, open_run
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


def main(inventory_path: str, host_name: str, accept_new_host_keys=False, prompt_for_sudo_password=False,
         stream=None) -> int:
    stream = stream or sys.stdout
    inventory, options, connections = open_run(inventory_path, accept_new_host_keys, prompt_for_sudo_password)
    host = find_host(inventory, host_name)
    roles = roles_of(host)
    if not roles:
        raise OpsError(f"{inventory.path}: host {host_name!r} is in neither 'proxies' nor 'backends'")
    options.tls = tls.prepare(inventory, [host] if "proxies" in host.groups else [], save=False)
    request = factlib.FactRequest()
    for role in roles:
        request = request.merge(fact_request(role, host, inventory, options))
    try:
        found = gather(connections.get(host), request)
    except Exception as exc:
        print(f"{host_name} | UNREACHABLE! | {exc}", file=stream)
        return 2
    finally:
        connections.close()
    print(json.dumps({host_name: {"ansible_facts": as_setup(found), "changed": False}}, indent=2), file=stream)
    return 0
