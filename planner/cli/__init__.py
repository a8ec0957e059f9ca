"""`python -m planner ...`: the scriptable face of the engine.

Each subcommand group lives in its own module exposing `register(subparsers)`; the
module list below is the registry. Library errors become one line on stderr and a
non-zero exit status, never a traceback:

    0  success            2  bad input (unknown name, out-of-range value, bad file)
    3  does not fit / target unreachable / no break-even     4  malformed data catalog
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from planner.errors import (
    CatalogError,
    DoesNotFitError,
    NoBreakEvenError,
    PlannerError,
    UnreachableTargetError,
    truncate,
)

COMMAND_MODULES = (
    "planner.cli.catalog_cmds",
    "planner.cli.estimate_cmd",
    "planner.cli.calibrate_cmds",
    "planner.cli.recommend_cmd",
    "planner.cli.deploy_cmd",
    "planner.cli.prices_cmd",
    "planner.cli.usage_cmd",
    "planner.cli.plan_cmd",
    "planner.cli.finetune_cmd",
    "planner.cli.simulate_cmd",
)

EXIT_OK, EXIT_INPUT, EXIT_INFEASIBLE, EXIT_CATALOG = 0, 2, 3, 4
MAX_MESSAGE_CHARS = 600  # one error line: longer messages (an echoed input) are cut with an ellipsis


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (and exit status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"error: {self.prog}: {truncate(message, MAX_MESSAGE_CHARS)} (see --help)\n")
        raise SystemExit(EXIT_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="planner", description="Self-hosting cost and TCO planner for open-weight LLMs.")
    from planner import __version__

    parser.add_argument("--version", action="version", version=f"planner {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def exit_code_for(err: PlannerError) -> int:
    if isinstance(err, CatalogError):
        return EXIT_CATALOG
    if isinstance(err, (DoesNotFitError, UnreachableTargetError, NoBreakEvenError)):
        return EXIT_INFEASIBLE
    return EXIT_INPUT


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PlannerError as err:
        sys.stderr.write(f"error: {truncate(str(err), MAX_MESSAGE_CHARS)}\n")  # one line, never the whole input
        return exit_code_for(err)
    except BrokenPipeError:  # `planner models | head`
        return EXIT_OK
