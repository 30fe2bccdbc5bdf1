"""Run the real `orch` and SIGKILL it at one step of the act phase.

    python -m tests.e2e.crash_harness STEP heal --yes ...

The process dies as a process dies: no finally, no atexit, no flush. STEP is where:

- after-intent: the first intent is in the store, nothing was called;
- during-call: RebootInstances reached AWS, its reply was not read;
- after-call: RebootInstances returned, no outcome recorded;
- before-history: the first outcome is recorded, its history not written.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from typing import Any, Callable

STEPS = ("after-intent", "during-call", "after-call", "before-history")


def die(*_: Any, **__: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def after(original: Callable[..., Any], when: Callable[[Any], bool] = lambda result: True) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if when(result):
            die()
        return result

    return wrapped


def arm(step: str) -> None:
    from orchestrator.act import ec2
    from orchestrator.aws import Clients
    from orchestrator.state.journal import StoreJournal

    if step == "after-intent":
        StoreJournal.begin = after(StoreJournal.begin, when=lambda refused: refused is None)  # type: ignore[method-assign]
    elif step == "during-call":
        made = Clients.mutating_client

        def mutating_client(self: Clients, service: str) -> Any:
            client = made(self, service)
            client.meta.events.register("before-parse.ec2.RebootInstances", die, unique_id="crash-harness")
            return client

        Clients.mutating_client = mutating_client  # type: ignore[method-assign]
    elif step == "after-call":
        ec2.reboot = after(ec2.reboot)
    elif step == "before-history":
        StoreJournal.finish = after(StoreJournal.finish)  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown step {step!r}: one of {', '.join(STEPS)}")


if __name__ == "__main__":
    arm(sys.argv[1])
    from orchestrator.cli import cli

    cli(sys.argv[2:], prog_name="orch")
