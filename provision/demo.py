"""The demo's last step: a few requests through each proxy of an inventory, printed."""
from __future__ import annotations

import http.client

from .inventory import load


def answers(inventory_path: str, count: int = 6) -> list[str]:
    lines = []
    for proxy in load(inventory_path).group("proxies"):
        for i in range(count):
            conn = http.client.HTTPConnection(proxy.private_address, 80, timeout=5)
            conn.request("GET", "/")
            resp = conn.getresponse()
            lines.append(f"{i + 1}. GET http://{proxy.private_address}/ -> {resp.status} {resp.read().decode()}")
            conn.close()
    return lines
