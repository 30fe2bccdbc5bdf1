import socket

import pytest

from tests.conftest import ForbiddenConnection, is_allowed_address


@pytest.mark.parametrize(
    "address, allowed",
    [
        (("127.0.0.1", 22), True),
        (("127.20.3.4", 22), True),
        (("::1", 22, 0, 0), True),
        (("localhost", 80), True),
        (("10.0.0.1", 22), False),
        (("172.31.5.5", 22), False),
        (("192.168.1.1", 22), False),
        (("8.8.8.8", 53), False),
        (("ec2.us-east-1.amazonaws.com", 443), False),
        ("/tmp/some.sock", True),
    ],
)
def test_guard_allows_only_loopback(address, allowed):
    assert is_allowed_address(address) is allowed


def test_guard_blocks_a_real_connect_outside_loopback():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(ForbiddenConnection):
            # The session-wide guard, called directly so the autouse recorder does not fail this test.
            from tests import conftest

            conftest._guarded_connect(sock, ("10.1.2.3", 22))
    finally:
        sock.close()
