"""Day-2 operations: status, drain and undrain, ad-hoc commands, facts, and the audit trail."""
