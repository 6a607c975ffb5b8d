"""Day-2 commands, above deploy: status, drain and undrain, ad-hoc commands, facts."""
