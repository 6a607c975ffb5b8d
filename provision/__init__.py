"""provision: Ansible-style provisioning of Apache as a reverse proxy."""
