"""Compute: the function bodies that run on Modal (or locally through the local backend).

Nothing here talks to Temporal or to the Ledger. `functions.py` maps a function name
to its body; `app.py` wraps the same bodies as Modal functions for `modal deploy`.
"""
