"""The one way a command (or a sub-command) adds its parser, so every ``--help`` reads alike."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def add_command(
    sub: Any,
    name: str,
    help: str,
    description: str,
    epilog: str | None = None,
    func: Callable[[argparse.Namespace], int] | None = None,
) -> argparse.ArgumentParser:
    """Add ``name`` to ``sub`` (an argparse sub-parsers action).

    An epilog holds hand-laid-out examples, so it is printed as written; ``func`` is what
    ``cli.main`` calls with the parsed arguments. No option is matched by a prefix: ``--grid``
    must never silently become a longer option that happens to start with it.
    """
    p = sub.add_parser(
        name,
        allow_abbrev=False,
        help=help,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter if epilog else argparse.HelpFormatter,
    )
    if func is not None:
        p.set_defaults(func=func)
    return p
