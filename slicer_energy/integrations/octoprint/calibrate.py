"""Calibrate from the plugin's history: the session folders of finished jobs, fitted exactly
as ``slicer-energy calibrate SESSION...`` fits them (``calibrate_sessions``, ``write_profile``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ...errors import CalibrationError, SlicerEnergyError


def calibrate_history(folders: list[str | Path], base: str, out: str | Path) -> dict[str, Any]:
    """Fit ``base`` (a printer the CLI accepts) to the jobs in ``folders``, write the calibrated
    profile to ``out`` and return the fit report. A folder that cannot be used (no meter, a
    cancelled job without a complete trace) is skipped and named with the reason."""
    from ...calib.inputs.session import load_session, require_heater_output
    from ...calib.profile import write_profile
    from ...calib.validate import calibrate_sessions
    from ...machine import load_machine

    sessions, skipped = [], []
    for f in folders:
        try:
            s = load_session(f)
            require_heater_output(s)
        except SlicerEnergyError as exc:
            skipped.append({"session": str(f), "reason": str(exc)})
            continue
        sessions.append(s)
    if not sessions:
        why = f"; {skipped[0]['reason']}" if skipped else ""
        raise CalibrationError(
            f"no usable job to calibrate from ({len(skipped)} recorded, each needs a meter and a "
            f"complete print){why}"
        )
    machine = load_machine(base)
    fit, _calibrated = calibrate_sessions(sessions, machine)
    path = write_profile(out, base, machine, fit)
    return {
        "profile": str(path),
        "base": base,
        "sessions": fit.sessions,
        "skipped": skipped,
        "r2": fit.r2,
        "rms_w": fit.rms_w,
        "n_power": fit.n_power,
        "time_scale": fit.time_scale,
        "notes": fit.notes,
        "params": {
            k: {
                "value": p.value,
                "stderr": p.stderr if math.isfinite(p.stderr) else None,
                "identified": p.identified,
            }
            for k, p in fit.params.items()
        },
    }
