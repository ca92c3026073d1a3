"""Errors that reach the user.

Every error the CLI turns into a one-line message (exit code 2) derives from
:class:`SlicerEnergyError`; anything else is a bug and keeps its traceback. Every such
class lives here, so a newcomer finds the whole list in one file; each docstring says
what the user did wrong. (Private control-flow exceptions that never leave their module,
such as the G-code fast parser's ``_Fallback``/``_Split`` and the simulator's ``_Reset``,
stay private where they are.)
"""

from pathlib import Path


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


class PrinterError(SlicerEnergyError):
    """The printer named could not be reached, reset, vanished or reported a fatal error.

    The user gave a port with no Marlin printer behind it (or one in use), unplugged it,
    or the firmware halted (thermal runaway, kill).
    """


class MeterError(SlicerEnergyError):
    """The power meter named did not answer, answered garbage, or cannot be opened.

    The user gave the wrong port, meter kind, address or baud rate, or the meter is off.
    """


class RigSetupError(SlicerEnergyError):
    """A rig session could not start: the printer or the meter the user named is missing."""


class SessionError(SlicerEnergyError):
    """A session folder cannot be created or read.

    The user named a folder that already exists (sessions are never overwritten), one that
    cannot be written, or one that is not a session.
    """


class CorruptResultsFile(SettingsError):
    """A ``.parquet`` file in the results directory the user named cannot be read back.

    The file was truncated or written by something else; delete it and resume the batch.
    """

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: not a readable Parquet file ({reason})")
        self.path = path


class ProcessModelUnavailable(SlicerEnergyError):
    """The process model a scenario step names is not installed or has no entry point.

    Fix: install/merge the module, or pin a published figure in the scenario
    (``pinned_kwh`` / ``pinned_kwh_per_kg``) and run with ``--energy pinned``.
    """


class MissingEnergy(SlicerEnergyError):
    """A step's energy is marked missing in the user's scenario file and no model supplies it."""


class LCAError(SlicerEnergyError):
    """The product system cannot be solved: the user's inventory gives a non-square or
    singular technosphere (a product nobody makes, or a loop that produces nothing net)."""


class ConfigError(SettingsError):
    """The user's config file (``slicer-energy`` defaults: printer, prices, grid) cannot be
    read, or a key in it is unknown or has a value of the wrong kind."""
