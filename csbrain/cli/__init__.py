"""The ``csbrain`` command line: a thin layer over the public functions.

Each subcommand is a module of this package named ``<command>.py`` (``-`` in a command name
becomes ``_``) that defines ``add_parser(subparsers)`` and ``run(args) -> int``. The modules
are discovered, so adding a command touches no other file.

Errors that users can fix exit with status 2 and one clear line: ``ValueError`` (which includes
:class:`csbrain._checks.CSBrainError`, the project's user-error type, and the errors of
validators) and ``OSError`` (a missing or unwritable path, a full disk, an unreachable
network). Any other exception (``TypeError``, ``KeyError``, ``RuntimeError``, ...) is a bug:
it propagates with its traceback. ``-vv`` shows the traceback of user errors too.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

#: Exceptions reported as one line (exit status 2); see the module docstring.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)


def _command_modules():
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        yield importlib.import_module(f"{__name__}.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every discovered subcommand."""
    from csbrain import __version__

    parser = argparse.ArgumentParser(prog="csbrain", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"csbrain {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-v info, -vv debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _command_modules():
        module.add_parser(sub)
    return parser


class _StdErr:
    """``sys.stderr`` looked up at each write (pytest and notebooks replace it)."""

    def __getattr__(self, name: str):
        return getattr(sys.stderr, name)


def _mne_logs_to_stderr() -> None:
    """MNE logs to stdout; the CLI keeps stdout for results (``--json``, tables)."""
    import mne  # noqa: F401  (installs MNE's handler, which is then re-pointed)

    for handler in logging.getLogger("mne").handlers:
        if type(handler) is logging.StreamHandler:
            handler.setStream(_StdErr())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``csbrain`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    _mne_logs_to_stderr()
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("csbrain: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as err:
        if args.verbose >= 2:
            raise
        print(f"csbrain {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
