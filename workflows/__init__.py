"""Orchestration: decide, wait, call activities. No I/O, clocks, randomness or env here."""
