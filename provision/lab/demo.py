"""The demo's last step: a few requests through each proxy of an inventory, where its clients
reach it, printed."""
from __future__ import annotations

from urllib.parse import urlsplit

from ..deploy import smoke_connection, smoke_url
from ..inventory import load


def answers(inventory_path: str, count: int = 6) -> list[str]:
    lines = []
    inventory = load(inventory_path)
    for proxy in inventory.group("proxies"):
        url = smoke_url(proxy)
        connect = smoke_connection(url, proxy, inventory)
        for i in range(count):
            conn = connect()
            conn.request("GET", urlsplit(url).path or "/")
            resp = conn.getresponse()
            lines.append(f"{i + 1}. GET {url} -> {resp.status} {resp.read().decode()}")
            conn.close()
    return lines
