"""Laser powder-bed fusion: SLS (polymer) and MLS (metal) builds of one or many parts.

Owns the powder bed (:mod:`.powderbed`: a part's per-layer scan area and contour), packing
copies and parts into a build chamber (:mod:`.packing`), one machine profile for both
processes (:mod:`.machine`), the job steps they share (:mod:`.job`), the physics of each
process (:mod:`.sls`, :mod:`.mls`) and the checks against published figures
(:mod:`.validation`, ``python -m slicer_energy.sintering.validation``).

May import the shared core (``errors``, ``estimate``, ``profiles``, ``backend``,
``voxelize``, ``geometry``); never ``batch``, ``commands``, ``lca`` or ``predict``, which
call into it.
"""
