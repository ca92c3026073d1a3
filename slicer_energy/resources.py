"""Access to the packaged data folders (hardware/, calib/, lca/, firmware_logs/).

In a wheel they live in ``slicer_energy/_data/<folder>`` (see pyproject's
force-include) and are found through :mod:`importlib.resources`. An editable
install of a checkout has no ``_data``; then the folders beside the package
are used, so development and installed runs read the same files.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

FOLDERS = ("hardware", "calib", "lca", "firmware_logs")


def data_dir(folder: str) -> Path:
    """Directory of one packaged data folder, e.g. ``data_dir("hardware")``."""
    if folder not in FOLDERS:
        raise ValueError(f"unknown data folder {folder!r}; expected one of {FOLDERS}")
    packaged = resources.files("slicer_energy") / "_data" / folder
    if packaged.is_dir():
        return Path(str(packaged))
    # Editable install / running from the source tree.
    return Path(__file__).resolve().parent.parent / folder


def data_file(folder: str, *parts: str) -> Path:
    """Path of a file inside a packaged data folder (not checked for existence)."""
    return data_dir(folder).joinpath(*parts)
