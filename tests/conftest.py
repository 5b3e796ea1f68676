import ipaddress
import os
import socket

import pytest
from hypothesis import settings

# deadline=None everywhere: a loaded two-core machine makes per-example timing useless.
settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile(
    "ci", max_examples=100, deadline=None, derandomize=bool(os.environ.get("CI"))
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

# pytester runs inner pytest sessions, for the tests of convsim's own pytest plugin.
pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that tries to reach the network beyond 127.0.0.0/8 or ::1."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(str(host)):
            raise ConnectionRefusedError(f"tests may only use loopback, not {host!r}")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
