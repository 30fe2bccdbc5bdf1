"""Who is at the keyboard: the name a person's pause or manual action is recorded under.

Shared by the command modules that record a person (`orch pause`, `orch reboot`,
`orch stop-start`), so no command module imports another's private helper.
"""

from __future__ import annotations

import getpass
import socket


def who() -> str:
    """``user@host``; the host alone where the user has no name (a container's uid)."""
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except (KeyError, OSError):
        return socket.gethostname()
