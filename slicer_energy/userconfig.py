"""The user's defaults: printer, electricity price, currency, filament price and grid.

A maker sets them once in a TOML file, ``config.toml`` in the platformdirs config
directory (``~/.config/slicer-energy/`` on Linux) or the file ``$SLICER_ENERGY_CONFIG``
names; a command-line option always wins. Example::

    printer = "ender3-v2"
    price_per_kwh = 0.32
    currency = "EUR"
    filament_price_per_kg = 22.0
    grid = "DE"          # an electricity mix id, or a number in g CO2e/kWh
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError

ENV = "SLICER_ENERGY_CONFIG"
APP = "slicer-energy"


@dataclass(frozen=True)
class UserConfig:
    """What the config file sets (None: not set); ``path`` is where it was read from."""

    printer: str | None = None
    price_per_kwh: float | None = None
    currency: str | None = None
    filament_price_per_kg: float | None = None
    grid: str | None = None
    path: Path | None = None


def config_path() -> Path:
    """``$SLICER_ENERGY_CONFIG``, else ``config.toml`` in the user's config directory."""
    env = os.environ.get(ENV)
    if env:
        return Path(env)
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP)) / "config.toml"


def _text(path: Path, key: str, v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ConfigError(f"{path}: key {key!r}: expected a non-empty string, got {v!r}")
    return v


def _price(path: Path, key: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise ConfigError(f"{path}: key {key!r}: expected a number >= 0, got {v!r}")
    return float(v)


def _grid(path: Path, key: str, v: Any) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(_price(path, key, v))
    return _text(path, key, v)


_KEYS = {
    "printer": _text,
    "price_per_kwh": _price,
    "currency": _text,
    "filament_price_per_kg": _price,
    "grid": _grid,
}


def load_user_config(path: Path | None = None) -> UserConfig:
    """Read the config file (absent at the default place: no defaults); every error is one
    line naming the file and, where there is one, the key."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    explicit = path is not None or bool(os.environ.get(ENV))
    path = path or config_path()
    named = f" (named by ${ENV})" if os.environ.get(ENV) else ""
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{path}: config file not found{named}") from None
        return UserConfig()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    unknown = sorted(set(values) - set(_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r}; known keys: {', '.join(_KEYS)}")
    return UserConfig(**{k: _KEYS[k](path, k, v) for k, v in values.items()}, path=path)
