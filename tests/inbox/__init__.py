"""Inbox tests: the pages over HTTP (httpx, in-process) and in a real browser (Chromium)."""
