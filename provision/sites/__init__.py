"""The proxy's sites, pools and routes (model.py), from the inventory's short or long form."""
