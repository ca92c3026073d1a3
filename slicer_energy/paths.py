"""Names read from files that become parts of output paths.

A scenario's ``study``, a profile's ``name`` or a session's name end up in file names
(``<study>_gwp100.png``, ``calib/<name>-calibrated.toml``). Such a name is refused, not
rewritten, when it could leave the output folder or is not a file name at all: a slug
would silently write somewhere the user did not name, while a refusal names the file
and key to fix. Spaces and non-ASCII letters are fine in file names and stay.
"""

from __future__ import annotations

from .errors import SettingsError

_SEPARATORS = ("/", "\\")


def safe_name(text: str, what: str) -> str:
    """``text`` if it is usable as one path component, else :class:`SettingsError`.

    ``what`` says where the name comes from (e.g. ``"scen.toml: key 'study'"``). Refused:
    empty, ``.``/``..``, path separators (so also absolute paths and drive letters with
    a backslash), control characters, a ``:`` (a Windows drive or stream), and leading or
    trailing spaces.
    """
    bad = ""
    if not text:
        bad = "it is empty"
    elif text in (".", ".."):
        bad = f"{text!r} names a folder, not a file"
    elif any(s in text for s in _SEPARATORS):
        bad = "it contains a path separator"
    elif any(ord(c) < 32 or ord(c) == 127 for c in text):
        bad = "it contains a control character"
    elif ":" in text:
        bad = "it contains ':'"
    elif text != text.strip():
        bad = "it starts or ends with a space"
    if bad:
        raise SettingsError(
            f"{what}: {text!r} cannot be part of a file name ({bad}); use letters, digits, "
            "spaces, '-', '_' and '.'"
        )
    return text
