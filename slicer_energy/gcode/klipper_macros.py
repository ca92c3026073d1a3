"""Klipper start/end macros (``PRINT_START`` and kin) as the plain commands they run.

A Klipper G-code hands its heat-up, homing and levelling to a macro of the printer.cfg
(``PRINT_START BED=60 EXTRUDER=210``). With the config, the macro's ``gcode:`` body is a
Jinja2 template (Klipper renders it with ``{`` ``}`` as expression marks, ``params`` the
call's NAME=value strings and the macro's ``variable_*`` options by name); it is rendered
here with jinja2 when it is importable (installed with the ``octoprint`` and ``test``
extras), else by a small substitution of the common ``params.NAME|default(v)|float``
forms. Without the config, or when the template needs run-time printer state, the body
is assumed from the call's conventional parameter names (:func:`assumed_body`).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

# The macro calls the analyser expands (slicers' start/end G-code for Klipper printers).
START_MACROS = frozenset({"PRINT_START", "START_PRINT"})
END_MACROS = frozenset({"PRINT_END", "END_PRINT"})
# Nested macro calls followed (the same bound as klipper_config's levelling check).
MAX_DEPTH = 8
# Conventional parameter names of start macros (Voron, Ellis, Mainsail/Fluidd examples).
BED_NAMES = ("BED", "BED_TEMP", "BED_TEMPERATURE")
HOTEND_NAMES = (
    "EXTRUDER", "EXTRUDER_TEMP", "EXTRUDER_TEMPERATURE", "HOTEND", "HOTEND_TEMP",
    "HOTEND_TEMPERATURE", "NOZZLE", "NOZZLE_TEMP",
)  # fmt: skip


class MacroUnrenderable(Exception):
    """A macro body that cannot be rendered without the printer's run-time state."""


@dataclass(frozen=True)
class Macro:
    """One ``[gcode_macro NAME]``: its template, ``variable_*`` options and the name of the
    command it replaces (``rename_existing``: calls of that name run the original)."""

    name: str
    body: str
    variables: tuple[tuple[str, str], ...] = ()
    renamed: str = ""


def macros_of(sections: dict[str, dict[str, str]]) -> tuple[Macro, ...]:
    """The ``[gcode_macro ...]`` sections of a parsed printer.cfg (names upper case)."""
    out = []
    for sec, opts in sections.items():
        if sec.startswith("gcode_macro ") and "gcode" in opts:
            vs = tuple((k[9:], v) for k, v in opts.items() if k.startswith("variable_"))
            name = sec[12:].strip().upper()
            out.append(Macro(name, opts["gcode"], vs, opts.get("rename_existing", "").upper()))
    return tuple(out)


def call_params(text: str) -> dict[str, str]:
    """'PRINT_START BED=60 MATERIAL="PLA"' -> {'BED': '60', 'MATERIAL': 'PLA'} (Klipper's
    extended command syntax: NAME=value, names case-insensitive, values strings)."""
    rest = text.split(None, 1)[1] if len(text.split(None, 1)) > 1 else ""
    return {
        k.upper(): v.strip('"')
        for k, v in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|\S*)", rest)
    }


def assumed_body(name: str, params: dict[str, str]) -> list[str]:
    """The conventional body of a start/end macro, for a printer whose config is not given:
    start: heat the bed and wait, heat the hotend and wait, home (the order of Klipper's
    sample PRINT_START macros); end: heaters, fan and motors off."""
    if name in END_MACROS:
        return ["M104 S0", "M140 S0", "M107", "M84"]
    lines = []
    for names, cmd in ((BED_NAMES, "M190"), (HOTEND_NAMES, "M109")):
        value = next((params[n] for n in names if n in params), None)
        if value is not None:
            lines.append(f"{cmd} S{value}")
    return [*lines, "G28"]


def expand(
    name: str,
    params: dict[str, str],
    macros: dict[str, Macro],
    unrendered: list[str],
    depth: int = 0,
) -> list[str]:
    """The plain commands macro ``name`` runs, nested macros expanded (``MAX_DEPTH`` deep).

    Raises :class:`MacroUnrenderable` when its own template needs more than its parameters;
    a nested macro that does is kept as a plain call (a levelling macro such as KAMP's
    BED_MESH_CALIBRATE still probes) and its reason appended to ``unrendered``.
    """
    out: list[str] = []
    renamed = {m.renamed: m.name for m in macros.values() if m.renamed}
    for line in render(macros[name], params).splitlines():
        line = line.split(";", 1)[0].strip()
        if not line:
            continue
        cmd = line.split()[0].upper()
        if cmd in renamed:  # rename_existing: the original command under its own name
            line = renamed[cmd] + line[len(cmd) :]
        elif cmd in macros and cmd != name and depth < MAX_DEPTH:
            try:
                out.extend(expand(cmd, call_params(line), macros, unrendered, depth + 1))
                continue
            except MacroUnrenderable as exc:
                unrendered.append(str(exc))
        out.append(line)
    return out


def render(macro: Macro, params: dict[str, str]) -> str:
    """The macro's body with its template evaluated for ``params``."""
    variables = {k: _literal(v) for k, v in macro.variables}
    try:
        import jinja2
        from jinja2.sandbox import SandboxedEnvironment
    except ImportError:
        return _substitute(macro.body, params, variables)
    env = SandboxedEnvironment(
        block_start_string="{%",
        block_end_string="%}",
        variable_start_string="{",
        variable_end_string="}",
        undefined=jinja2.ChainableUndefined,  # printer.* state: undefined, not an error
    )
    try:
        return env.from_string(macro.body).render(
            **variables, params=params, rawparams=" ".join(f"{k}={v}" for k, v in params.items())
        )
    except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError) as exc:
        raise MacroUnrenderable(f"{macro.name}: {exc}") from None


def _literal(text: str) -> object:
    """A ``variable_*`` value as Klipper reads it (a Python literal, else the string)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


_SET = re.compile(r"\{%\s*set\s+(\w+)\s*=\s*([^%]+?)\s*%\}")
_EXPR = re.compile(r"\{([^{}%]+)\}")


def _substitute(body: str, params: dict[str, str], variables: dict[str, object]) -> str:
    """Without jinja2: ``{% set X = expr %}`` and ``{expr}`` where expr is ``params.NAME``
    or a name, filtered by ``default(v)``, ``float``, ``int``; anything else is refused."""
    names = {k: str(v) for k, v in variables.items()}
    lines = []
    for line in body.splitlines():
        m = _SET.fullmatch(line.strip())
        if m:
            names[m.group(1)] = _value(m.group(2), params, names)
            continue
        line = _EXPR.sub(lambda e: _value(e.group(1), params, names), line)
        if "{" in line:
            raise MacroUnrenderable(f"template {line.strip()!r} needs jinja2")
        lines.append(line)
    return "\n".join(lines)


def _value(expr: str, params: dict[str, str], names: dict[str, str]) -> str:
    head, *filters = (part.strip() for part in expr.split("|"))
    m = re.fullmatch(r"params\.(\w+)|params\[['\"](\w+)['\"]\]", head)
    value = params.get((m.group(1) or m.group(2)).upper()) if m else names.get(head)
    if value is None and not m and head not in names:
        raise MacroUnrenderable(f"{{{expr}}} needs jinja2")
    for f in filters:
        d = re.fullmatch(r"default\((.*)\)", f)
        if d:
            value = d.group(1).strip("'\" ") if value is None else value
        elif f in ("float", "int") and value is not None:
            try:
                value = str(float(value) if f == "float" else int(float(value)))
            except ValueError:
                raise MacroUnrenderable(f"{{{expr}}}: {value!r} is not a number") from None
        else:
            raise MacroUnrenderable(f"{{{expr}}}: filter {f!r} needs jinja2")
    if value is None:
        raise MacroUnrenderable(f"{{{expr}}}: no such parameter in the call")
    return value
