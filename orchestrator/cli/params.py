"""Parameter types every orch command shares.

``FiniteFloat``: click's FLOAT reads ``nan``, ``inf`` and ``1e400`` (which Python reads as
infinity) as floats, and ``FloatRange`` lets ``nan`` through, since every comparison with
it is false. A NaN wait never ends and a NaN number of hours is a crash in ``timedelta``;
so every float option refuses them where they are given, with one line.
"""

from __future__ import annotations

import math
from typing import Any

import click

from orchestrator.echo import clip


class FiniteFloat(click.FloatRange):
    """A float that is a number (not nan, not ±inf), within ``min``..``max`` when given."""

    name = "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            number = click.FLOAT.convert(value, param, ctx)
        except click.BadParameter:  # click's own message quotes the value whole
            self.fail(f"{clip(value)} is not a number: give a number like 1.5", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{clip(value)} is not a finite number: give a number like 1.5", param, ctx)
        return super().convert(number, param, ctx)
