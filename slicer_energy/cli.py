"""Command-line entry point: ``slicer-energy COMMAND ...``.

Each command lives in ``slicer_energy/commands/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func``. Errors
derived from :class:`SlicerEnergyError` become one line on stderr and exit
code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from . import __version__
from .errors import SlicerEnergyError

# Order here is the order in --help.
COMMAND_MODULES = (
    "predict",
    "compare",
    "batch",
    "batch_report",
    "gcode",
    "rig",
    "voxelize",
    "samples",
    "lca",
    "claim",
    "calibrate",
    "profiles",
)


class _OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line (the limit that was broken, and where help is), like every
    other error of the CLI; ``--help`` still prints the full usage."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser(commands: tuple[str, ...] = COMMAND_MODULES) -> argparse.ArgumentParser:
    """The parser with ``commands`` (module names) registered: all by default, so that
    ``--help`` lists them; :func:`main` registers only the one it runs (see
    :func:`commands_for`)."""
    parser = _OneLineParser(
        prog="slicer-energy",
        allow_abbrev=False,  # and every command's parser (commands/_parser.py)
        description=(
            "Predict the print time and electrical energy of 3D prints (home FDM printers, "
            "polymer SLS, metal laser melting) from a part's geometry or from G-code; log and "
            "calibrate real printers; turn energy into LCA impacts."
        ),
        epilog="Run 'slicer-energy COMMAND --help' for each command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in commands:
        importlib.import_module(f".commands.{name}", __package__).register(sub)
    return parser


def commands_for(argv: list[str]) -> tuple[str, ...]:
    """The command modules a command line needs: its command's alone (a command module
    imports what its command uses, so ``predict`` never loads the G-code or LCA code), none
    for ``--version``, all for ``--help``, no arguments or an unknown command."""
    words = [a for a in argv if not a.startswith("-")]
    if words and words[0].replace("-", "_") in COMMAND_MODULES:
        return (words[0].replace("-", "_"),)
    if argv and not words and not {"-h", "--help"} & set(argv):
        return ()
    return COMMAND_MODULES


def main(argv: list[str] | None = None) -> int:
    # A shell without job control starts background commands with SIGINT ignored, and
    # Python then never raises KeyboardInterrupt; long commands (rig log, batch) rely on
    # it to close their logs cleanly, so take SIGINT back.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(commands_for(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except SlicerEnergyError as exc:
        print(f"slicer-energy: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("slicer-energy: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
