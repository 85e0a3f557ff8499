"""One line instead of a traceback when fairseq-train/-generate/-interactive (``--user-dir nmt``) get bad input.

fairseq's command-line mains catch no exceptions, and its trainer wraps any
failure to load a checkpoint in "please ensure that the architectures
match", so a clear message of ours (a wrong ``--adapter-dirs`` folder, width,
mode or shape, an xling adapter, a folder given twice) came last under a full
traceback, or not at all.  Importing the plugin under a fairseq command
installs a ``sys.excepthook`` that prints ``<command>: error: <message>`` and
exits 1 when the exception, or one it was raised from, is a ``ValueError``,
``KeyError``, ``TypeError`` or ``OSError`` raised in ``nmt`` or ``adapter_core`` (our own
checks), or torch's refusal to unpickle a checkpoint (``--path``), which is
told in our words, without torch's advice to load it with
``weights_only=False``.  Any other exception keeps Python's traceback, and
``NMT_TRACEBACK=1`` shows the traceback always.
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import adapter_core

#: Where our own checks live: an error raised in these folders is bad input, told in one line.
OUR_FOLDERS = tuple(str(Path(module.__file__).resolve().parent) + os.sep for module in (sys.modules[__package__],
                                                                                        adapter_core))
#: Exception types that our checks raise for bad input.
USER_ERRORS = (ValueError, KeyError, TypeError, OSError)


def _raised_in_ours(err: BaseException) -> bool:
    """True when the innermost frame of ``err``'s traceback is in ``nmt`` or ``adapter_core``."""
    tb, last = err.__traceback__, None
    while tb is not None:
        last, tb = tb, tb.tb_next
    return last is not None and os.path.abspath(last.tb_frame.f_code.co_filename).startswith(OUR_FOLDERS)


def _argv_value(flag: str, argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def one_line(err: BaseException, argv: list[str] | None = None) -> str | None:
    """The one-line message for ``err`` (or an exception in its chain), or None when it is not bad input."""
    from .checkpoints import refused_checkpoint_line

    argv = sys.argv if argv is None else argv
    chain, seen = [], set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        chain.append(err)
        err = err.__cause__ or err.__context__
    for error in chain:
        if isinstance(error, pickle.UnpicklingError):
            return refused_checkpoint_line(error, _argv_value("--path", argv) or "the checkpoint")
        if isinstance(error, USER_ERRORS) and _raised_in_ours(error):
            return str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    return None


def _hook(kind, err, traceback, previous=sys.excepthook) -> None:
    line = None if os.environ.get("NMT_TRACEBACK") else one_line(err)
    if line is None:
        previous(kind, err, traceback)
        return
    print(f"{os.path.basename(sys.argv[0])}: error: {line}", file=sys.stderr)


def install() -> None:
    """Install the hook under a fairseq command (fairseq-train, fairseq-generate ...), not in a user's program."""
    if os.path.basename(sys.argv[0] if sys.argv else "").startswith("fairseq-"):
        sys.excepthook = _hook
