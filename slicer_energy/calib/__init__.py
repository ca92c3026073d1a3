"""Calibration: fit a printer's energy model from logged sessions (issue 7).

``inputs`` reads the recordings: ``inputs.session`` reads and aligns a rig session's streams
on one clock; ``inputs.octoprint`` (with ``inputs.plug`` for smart-plug CSVs and
``inputs.clock`` for the meter's clock offset) turns OctoPrint + smart plug into the same form;
``inputs.klipper`` reads Klipper logs and ``inputs.trace`` bare power CSVs.
``klipper`` fits heater models to Klipper heat-ups and ``trace`` fits a bare power CSV + G-code;
``fit`` is the bounded robust least-squares fit with uncertainties and identifiability,
``profile`` writes/reads the calibrated profile, ``validate`` predicts
held-out prints from their G-code.
"""
