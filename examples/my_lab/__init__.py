"""A user's own package, outside Boomerang: see sims.py and the README's "Sweeping your own function"."""
