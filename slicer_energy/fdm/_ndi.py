"""``scipy.ndimage`` or ``cupyx.scipy.ndimage``, matching the array module."""

from __future__ import annotations

from types import ModuleType


def ndimage_for(xp: ModuleType) -> ModuleType:
    """The ndimage module with the same functions for ``xp`` (NumPy or CuPy)."""
    if xp.__name__.startswith("cupy"):
        import cupyx.scipy.ndimage as ndi

        return ndi
    import scipy.ndimage as ndi

    return ndi
