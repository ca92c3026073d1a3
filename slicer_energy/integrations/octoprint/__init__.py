"""The OctoPrint plugin (``plugin.py``, the only module that imports OctoPrint) and the parts it
wires together: estimates of uploads, job recording, the SQLite history, calibration."""
