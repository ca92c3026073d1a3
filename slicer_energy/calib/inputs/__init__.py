"""Calibration inputs: recordings turned into one :class:`~.session.Session` on one clock.

Owns the readers: rig session folders (:mod:`.session`), OctoPrint ``serial.log``
(:mod:`.octoprint`), smart-plug exports (:mod:`.plug`), the meter-to-host clock offset
(:mod:`.clock`), Klipper ``klippy.log`` heater stats (:mod:`.klipper`) and bare power traces
with what can be read off them without a model (:mod:`.trace`). The fits beside it in
``calib/`` (``fit``, ``trace``, ``klipper``, ``validate``, ``profile``) consume what these
return.

May import ``errors`` and the rig's pure helpers (``rig.session``, ``rig.marlin``); never the
simulator or the fits.
"""
