"""Calibration: fit a printer's energy model from logged sessions (issue 7).

``session`` reads and aligns a rig session's streams on one clock; ``octoprint`` (with
``plug`` for smart-plug CSVs and ``clock`` for the meter's clock offset), ``klipper`` and
``trace`` turn other recordings (OctoPrint + smart plug, Klipper logs, bare power CSV +
G-code) into the same form; ``fit`` is the bounded robust least-squares fit with uncertainties and
identifiability, ``profile`` writes/reads the calibrated profile, ``validate`` predicts
held-out prints from their G-code.
"""
