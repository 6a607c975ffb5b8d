"""The balancer mechanism the roles and the day-2 commands share: balancer-manager's page
(manager.py), the drain record that keeps a drain over reloads (record.py), and setting or
clearing Drain on every proxy (drain.py)."""
