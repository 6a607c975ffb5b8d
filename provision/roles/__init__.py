"""Roles: the wanted state of a host, as an ordered list of resources plus its handlers."""
