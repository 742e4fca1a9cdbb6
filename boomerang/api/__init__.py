"""The HTTP API: kickoff, status, approvals, decisions, the Charter, compute callbacks.

    app = create_app(client=client, pool=pool, settings=settings, webhook_secret=secret)
    uvicorn.run(app)          # `boomerang api` does this

Every resource is passed in; importing this package opens nothing.
"""

from boomerang.api.app import create_app

__all__ = ["create_app"]
