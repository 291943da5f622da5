"""The registry's metric `gates:` applied to a finished run: which it missed, as sentences.

Metrics are higher-is-better. `min`: the run's value must be at least this. `max_drop`: the run
may be at most this far (absolute, in the metric's units) under the baseline's value; without
a baseline (or when the baseline lacks the metric) only `min` applies. A gated metric the run
did not report, or reported as NaN/inf, misses its gate: a gate that cannot be checked must not
pass silently.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from mlrelay.registry.specs import GateSpec

TOLERANCE = 1e-9  # float noise: a drop of exactly max_drop passes


def missed_gates(
    gates: Mapping[str, GateSpec],
    metrics: Mapping[str, float],
    baseline: Mapping[str, float] | None,
) -> list[str]:
    """One sentence per gate the run missed (empty: every gate passed)."""
    missed: list[str] = []
    for name, gate in gates.items():
        value = metrics.get(name)
        if value is None:
            missed.append(f"{name}: not reported by the run (gated in the registry)")
            continue
        if not math.isfinite(value):
            missed.append(f"{name}: {value} is not a number the gate can check")
            continue
        if gate.min is not None and value < gate.min - TOLERANCE:
            missed.append(f"{name} {value:.4g} is under the minimum {gate.min:.4g}")
        before = (baseline or {}).get(name)
        if gate.max_drop is not None and before is not None and math.isfinite(before):
            drop = before - value
            if drop > gate.max_drop + TOLERANCE:
                missed.append(
                    f"{name} dropped {drop:.4g} ({before:.4g} → {value:.4g}), more than "
                    f"max_drop {gate.max_drop:.4g}"
                )
    return missed
