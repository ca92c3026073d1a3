"""Sourced TOML profiles: every number names where it came from.

Convention for files in ``hardware/``, ``lca/`` and ``calib/``:

* A table may carry ``source = "..."``; it covers every number directly in it.
* A single number may instead be an inline table ``{ value = 38, source = "..." }``
  (optionally with ``unit``), which overrides the table's source.
* A source that is a guess starts with ``"assumption:"`` and says why.
* An inline number may carry ``low`` and ``high``: the range an uncertainty analysis draws
  from (the value stays the nominal); the source says why the range is that wide.

:func:`load_sourced_toml` returns plain values (inline tables collapsed to their
``value``) plus a flat ``{"table.key": source}`` map (and ``{"table.key": (low, high)}``
for the ranged ones), and refuses a number that
has no source, naming the file and key. Typed profile dataclasses are built
from the plain values by each process module, with bounds checked at load.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import ProfileError
from .resources import data_dir


@dataclass
class SourcedProfile:
    """Values of a profile file, the source of each number, and the file it came from."""

    values: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)

    def source_of(self, dotted_key: str) -> str:
        return self.sources.get(dotted_key, "")

    def assumptions(self) -> dict[str, str]:
        """The keys whose source is marked as an assumption."""
        return {k: s for k, s in self.sources.items() if s.lower().startswith("assumption")}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _collapse(
    table: Mapping[str, Any],
    prefix: str,
    inherited: str | None,
    sources: dict[str, str],
    where: str,
    ranges: dict[str, tuple[float, float]],
) -> dict[str, Any]:
    own = table.get("source", inherited)
    out: dict[str, Any] = {}
    for key, v in table.items():
        if key == "source":
            continue
        dotted = f"{prefix}{key}"
        if isinstance(v, Mapping) and "value" in v:
            _check_finite(where, dotted, v["value"])
            if "source" not in v and own is None:
                raise ProfileError(f"{where}: {dotted} has no source")
            sources[dotted] = str(v.get("source", own))
            out[key] = v["value"]
            if "low" in v or "high" in v:
                ranges[dotted] = _range(where, dotted, v)
        elif isinstance(v, Mapping):
            out[key] = _collapse(v, dotted + ".", own, sources, where, ranges)
        elif isinstance(v, list) and v and all(isinstance(x, Mapping) for x in v):
            out[key] = [
                _collapse(x, f"{dotted}[{i}].", own, sources, where, ranges)
                for i, x in enumerate(v)
            ]
        else:
            numbers = v if isinstance(v, list) else [v]
            for x in numbers:
                _check_finite(where, dotted, x)
            if any(_is_number(x) for x in numbers):
                if own is None:
                    raise ProfileError(
                        f'{where}: {dotted} = {v!r} has no source; add source = "..." to its '
                        'table or write it as { value = ..., source = "..." }'
                    )
                sources[dotted] = str(own)
            out[key] = v
    return out


def _range(where: str, dotted: str, v: Mapping[str, Any]) -> tuple[float, float]:
    """``low <= value <= high``, both given and finite, else a ProfileError naming the key."""
    lo, val, hi = v.get("low"), v["value"], v.get("high")
    if not all(_is_number(x) and math.isfinite(x) for x in (lo, val, hi)) or not lo <= val <= hi:
        raise ProfileError(
            f"{where}: {dotted} needs low <= value <= high, got low={lo!r} value={val!r} "
            f"high={hi!r}"
        )
    return float(lo), float(hi)


def _check_finite(where: str, dotted: str, v: Any) -> None:
    """TOML allows ``nan`` and ``inf``; no profile value means either (they turn energies
    into NaN and times into 0 s downstream), so refuse them naming file, line and key."""
    if isinstance(v, float) and not math.isfinite(v):
        raise ProfileError(
            f"{where}{_line_of(where, dotted)}: {dotted} = {v} is not a finite number"
        )


def _line_of(path: str, dotted: str) -> str:
    """':N' for the first line that sets the key's last part to a non-finite value."""
    leaf = re.escape(dotted.rsplit(".", 1)[-1].split("[")[0])
    pat = re.compile(rf"(^|[{{,\s]){leaf}\s*=.*(nan|inf)", re.IGNORECASE)
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return ""
    return next((f":{n}" for n, ln in enumerate(lines, 1) if pat.search(ln)), "")


def load_sourced_toml(path: str | Path) -> SourcedProfile:
    """Read a sourced TOML file; raise :class:`ProfileError` naming file and key on any problem."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProfileError(f"{path}: profile file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: not valid TOML: {exc}") from None
    sources: dict[str, str] = {}
    ranges: dict[str, tuple[float, float]] = {}
    values = _collapse(raw, "", None, sources, str(path), ranges)
    return SourcedProfile(values=values, sources=sources, path=path, ranges=ranges)


def find_profile(folder: str, name: str, under: str | None = None) -> Path:
    """Resolve a profile by name (``prusa-mk3s``, an alias such as ``mk3s``, any case) in a
    data folder (or its subfolder ``under``), or by explicit ``.toml`` path.

    The error names what was tried and lists the available names.
    """
    root = data_dir(folder) / under if under else data_dir(folder)
    label = f"{folder}/{under}/" if under else f"{folder}/"
    return find_in([(label, root)], name)


def find_in(roots: Sequence[tuple[str, Path]], name: str, hint: str = "") -> Path:
    """The profile ``name`` (file stem or one of its ``aliases``, case and punctuation
    ignored; a stem before an alias) in the first of ``roots`` (label, folder) that has it;
    an existing .toml path as is. Raises :class:`ProfileError` naming the path or the
    folders tried and the names in each, then ``hint``."""
    p = Path(name)
    if p.suffix.lower() == ".toml" or len(p.parts) > 1:
        if p.is_file():
            return p
        raise ProfileError(f"{p}: no such file")
    listing = []
    key = profile_key(name)
    for label, root in roots:
        # A file named so is found without parsing every profile for its aliases (the
        # machine profiles take about 13 ms to parse, a tenth of a small part's prediction).
        named = sorted(root.rglob("*.toml")) if root.is_dir() else []
        hit_path = next((q for q in named if profile_key(q.stem) == key), None)
        if hit_path is not None:
            return hit_path
        entries = profile_index(root)
        hit = find_entry(entries, name)
        if hit is not None:
            return hit.path
        listing.append(f"{label}: {', '.join(e.name for e in entries) or '(none)'}")
    raise ProfileError(f"no profile {name!r}; tried {'; '.join(listing)}{hint}")


@dataclass(frozen=True)
class ProfileEntry:
    """One profile file as listed to users: its name, aliases and one-line description."""

    name: str
    path: Path
    aliases: tuple[str, ...] = ()
    description: str = ""


def profile_index(root: Path) -> list[ProfileEntry]:
    """The .toml profiles below ``root``, by name (files that are not valid TOML are listed
    by file name only; loading one reports the problem)."""
    out = []
    for path in sorted(root.rglob("*.toml")) if root.is_dir() else []:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError):
            raw = {}
        aliases = raw.get("aliases", [])
        out.append(
            ProfileEntry(
                name=path.stem,
                path=path,
                aliases=tuple(str(a) for a in aliases) if isinstance(aliases, list) else (),
                description=str(raw.get("description", "")),
            )
        )
    return out


def find_entry(entries: Sequence[ProfileEntry], name: str) -> ProfileEntry | None:
    """The entry named ``name``, else the first with it among its aliases, ignoring case and
    punctuation (``Ender-3`` finds ``ender3``), or None."""
    key = profile_key(name)
    named = (e for e in entries if key == profile_key(e.name))
    aliased = (e for e in entries if key in {profile_key(a) for a in e.aliases})
    return next(named, None) or next(aliased, None)


def profile_key(name: str) -> str:
    """A profile name as matched: case and punctuation ignored (`Ender-3` = `ender3`)."""
    return re.sub(r"[^a-z0-9.]", "", name.lower())


def user_data_dir() -> Path:
    """Where this user's calibrated profiles live: ``$SLICER_ENERGY_DATA`` if set, else the
    platform's user data folder (``~/.local/share/slicer-energy`` on Linux)."""
    env = os.environ.get("SLICER_ENERGY_DATA")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("slicer-energy", appauthor=False))


def calibrated_dir() -> Path:
    """Folder of the user's calibrated printer profiles (``calibrate`` writes there)."""
    return user_data_dir() / "calibrated"


def check_range(
    where: str, key: str, value: float, lo: float | None = None, hi: float | None = None
) -> float:
    """Bounds check at load time: error names the file/key, the value and the allowed range."""
    if not _is_number(value) or not math.isfinite(value):
        raise ProfileError(f"{where}: {key} must be a finite number, got {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        rng = f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
        raise ProfileError(f"{where}: {key} = {value} is outside the allowed range {rng}")
    return float(value)


def check_known_keys(where: str, table: Mapping[str, Any], allowed: set[str]) -> None:
    """Unknown keys are errors, not silence (a typo must not fall back to a default)."""
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ProfileError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )


def required_table(
    values: Mapping[str, Any], key: str, where: str, allowed: set[str]
) -> dict[str, Any]:
    """Table ``[key]`` that must hold exactly the ``allowed`` keys: none missing, none unknown."""
    t = values.get(key)
    if not isinstance(t, dict):
        raise ProfileError(f"{where}: missing table [{key}]")
    check_known_keys(f"{where} [{key}]", t, allowed)
    missing = sorted(allowed - set(t))
    if missing:
        raise ProfileError(f"{where} [{key}]: missing key(s) {', '.join(missing)}")
    return t
