"""Dash callbacks, one module per tab, each with `register(dash_app)`."""
