"""The local Modal for these tests: one server per session, its state reset per test.

The SDK reads `MODAL_SERVER_URL` and the token when it first creates its client, so the
session fixture sets them before any test here touches `modal.Function`; no RPC can
then leave loopback (test_wire.py checks that in a fresh interpreter).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.modal_servicer.servicer import LocalModal, ModalServicer


@pytest.fixture(scope="session")
def local_modal() -> Iterator[LocalModal]:
    server = LocalModal.start()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in server.env.items():
            patch.setenv(name, value)
        yield server
    server.stop()


@pytest.fixture
def modal_service(local_modal: LocalModal) -> Iterator[ModalServicer]:
    service = local_modal.servicer
    service.reset()
    yield service
    # Every RPC the SDK sent is one the servicer serves: a new one would show here first.
    assert service.unimplemented == []
    service.release()  # no held input outlives its test
