"""Entry points behind the Invoke tasks: turn flags into Options and call the API."""
from __future__ import annotations

import getpass


def deploy_main(inventory, mode=None, check=False, diff=False, limit=None, forks=20, json=None,
                accept_new_host_keys=False, prompt_for_sudo_password=False, verbose=False, serial=None) -> int:
    from .deploy import deploy
    from .engine import Options
    from .inventory import PROXY_MODES
    from .report import Reporter
    if mode is not None and mode not in PROXY_MODES:
        print(f"error: --mode must be one of {', '.join(PROXY_MODES)}, got {mode!r}")
        return 2
    password = getpass.getpass("sudo password: ") if prompt_for_sudo_password else None
    options = Options(check=check, diff=diff, forks=int(forks), accept_new_host_keys=accept_new_host_keys,
                      sudo_password=password, mode=mode)
    return deploy(inventory, options, limit=limit, json_path=json, reporter=Reporter(verbose=verbose),
                  serial=int(serial) if serial else None)
