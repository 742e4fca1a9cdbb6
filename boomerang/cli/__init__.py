"""The `boomerang` command line (`boomerang --help`): one module per command group.

main.py              puts the groups together; `main()` is the console entry point
runs.py              pipeline start, decide, cancel, status, approvals
tasks.py             task run
dev.py               dev, migrate, worker
api.py               api (serve the HTTP API), tokens, webhooks
webhook_endpoints.py webhooks register / rotate / endpoints
ledger.py            ledger, charter, cost
doctor.py            doctor, setup
common.py            running a client call; errors as exit codes
"""

from boomerang.cli.main import app, main

__all__ = ["app", "main"]
