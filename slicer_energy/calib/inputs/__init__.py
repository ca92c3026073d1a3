"""Calibration inputs: recordings turned into one :class:`~.session.Session` on one clock.

Owns the readers: rig session folders (:mod:`.session`), OctoPrint ``serial.log``
(:mod:`.octoprint`), smart-plug exports (:mod:`.plug`) and the meter-to-host clock offset
(:mod:`.clock`). The fits beside it in ``calib/`` (``fit``, ``trace``, ``klipper``,
``validate``, ``profile``) consume what these return.

May import ``errors`` and the rig's pure helpers (``rig.session``, ``rig.marlin``); never the
simulator or the fits, except :mod:`.plug`'s lazy use of ``calib.trace.read_power_trace``
for a bare power CSV.
"""
