"""Roles: the wanted state of a host, as an ordered list of resources plus its handlers.

PHASES is the job's order: every backend converges before any proxy routes to it."""
from . import backends, proxy

PHASES = ((backends.GROUP, backends), (proxy.GROUP, proxy))
