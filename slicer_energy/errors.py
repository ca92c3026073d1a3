"""Errors that reach the user.

Every error the CLI turns into a one-line message (exit code 2) derives from
:class:`SlicerEnergyError`; anything else is a bug and keeps its traceback.
"""


class SlicerEnergyError(Exception):
    """Base class: a problem with the user's input or environment, not a bug."""


class MeshError(SlicerEnergyError):
    """A mesh file cannot be read or does not describe a solid."""


class BackendError(SlicerEnergyError):
    """The requested array backend (NumPy/CuPy) is not available."""


class ProfileError(SlicerEnergyError):
    """A machine, material or LCA profile is missing, malformed or out of range."""


class SettingsError(SlicerEnergyError):
    """Print or process settings are out of range or inconsistent."""


class GcodeError(SlicerEnergyError):
    """A G-code file cannot be read: binary data, a malformed number, an impossible command."""


class CalibrationError(SlicerEnergyError):
    """A session or trace cannot be used for calibration (missing, corrupt, inconsistent)."""
