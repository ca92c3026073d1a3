"""The virtual printer and meter: the rig's transport exercised without hardware.

Owns a virtual Marlin printer on a pseudo-terminal (:mod:`.printer`; its position and planner
blocks in :mod:`.motion`), its hidden physics and the clocks it runs on (:mod:`.physics`, its
equations in :mod:`.truth`), the virtual power meter (:mod:`.meter`), the pty plumbing
(:mod:`.pty`) and ``rig demo`` (:mod:`.demo`: a recorded session against them with the drawn
truth written beside it).

May import the real transport beside it (``rig.protocol``, ``rig.meters``, ``rig.marlin``,
``rig.logger``, ``rig.session``); the real transport never imports it. Its truth model is
deliberately its own and richer than ``thermal``'s first-order one (the calibration must
recover its equivalents, not share its equations), so it imports neither ``thermal`` nor
``calib``, and ``calib`` never imports it.
"""
