"""Output flags and deprecated spellings shared by every command line (stdlib only, so nmt and xling both use it).

One vocabulary: ``--output-dir`` names a directory a tool writes, ``--output`` a file.
Old spellings stay for one release: they still work, print one line to stderr and
store into the new flag's destination.

    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="tool")
    >>> add_output_flag(parser, "--output-dir", help="where results go", deprecated=("--out",))
    >>> parser.parse_args(["--output-dir", "d"]).output_dir
    'd'
"""

from __future__ import annotations

import argparse
import sys

#: The two output flags: a directory the tool writes into, or one file it writes.
OUTPUT_FLAGS = ("--output-dir", "--output")


def deprecation_warning(prog: str, old: str, new: str) -> None:
    """One line on stderr: ``PROG: warning: OLD is deprecated; use NEW``."""
    print(f"{prog}: warning: {old} is deprecated; use {new}", file=sys.stderr)


class DeprecatedFlag(argparse.Action):
    """An old spelling of a flag: warns on stderr and stores its value into the new flag's ``dest``."""

    def __init__(self, option_strings, dest, new_flag: str, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.new_flag = new_flag

    def __call__(self, parser, namespace, values, option_string=None):
        if values is None:  # an optional positional left out
            return
        old = option_string or f"the positional argument {self.metavar}"
        deprecation_warning(parser.prog, old, self.new_flag)
        setattr(namespace, self.dest, values)


def add_output_flag(parser: argparse.ArgumentParser, flag: str, *, help: str, required: bool = True,
                    deprecated: tuple[str, ...] = (), **kwargs) -> None:
    """``--output-dir`` or ``--output`` on ``parser``; ``deprecated`` spellings still work with a warning.

    The flag and its old spellings form a group of which one is required (when ``required``),
    so ``--out D`` alone satisfies a required ``--output-dir``.
    """
    if flag not in OUTPUT_FLAGS:
        raise ValueError(f"output flag {flag!r}: use one of {', '.join(OUTPUT_FLAGS)}")
    dest = flag.lstrip("-").replace("-", "_")
    target = parser.add_mutually_exclusive_group(required=required) if deprecated else parser
    target.add_argument(flag, dest=dest, help=help, required=required and not deprecated, **kwargs)
    for old in deprecated:
        target.add_argument(old, dest=dest, action=DeprecatedFlag, new_flag=flag, help=argparse.SUPPRESS, **kwargs)


def add_deprecated_positional(parser: argparse.ArgumentParser, name: str, new_flag: str, **kwargs) -> None:
    """A positional argument that an option ``new_flag`` replaced: optional now, and it warns when given."""
    dest = new_flag.lstrip("-").replace("-", "_")
    parser.add_argument(f"_{name}", nargs="?", metavar=name.upper(), action=DeprecatedFlag, new_flag=new_flag,
                        help=argparse.SUPPRESS, **kwargs)
    parser.set_defaults(**{f"_{name}": None})
    parser._deprecated_positionals = getattr(parser, "_deprecated_positionals", {}) | {f"_{name}": dest}


def require_output(parser: argparse.ArgumentParser, args: argparse.Namespace, flag: str) -> None:
    """After ``parse_args``: take a deprecated positional's value (see ``add_deprecated_positional``), and
    end in argparse's one-line error when neither it nor ``flag`` was given."""
    dest = flag.lstrip("-").replace("-", "_")
    for positional, target in getattr(parser, "_deprecated_positionals", {}).items():
        value = getattr(args, positional, None)
        if target == dest and value is not None:
            if getattr(args, dest, None) is not None:
                parser.error(f"give the output once: {flag} or the positional argument, not both")
            setattr(args, dest, value)
        if hasattr(args, positional):
            delattr(args, positional)
    if getattr(args, dest, None) is None:
        parser.error(f"the following arguments are required: {flag}")
