"""data_prep: one idempotent, atomic script per corpus (``data-prep <corpus>``).

gettext catalogs (real parallel text on every Debian/Ubuntu machine), the TED
talks TSVs, plain parallel files and FLORES-200, monolingual text for MAD-X,
and SentencePiece + fairseq binarisation.  See ``data_prep.cli``.
"""

from adapter_core._version import __version__

from .common import DataPrepError, Manifest, SkipLog, read_parallel, read_text_lines

__all__ = ["__version__", "DataPrepError", "Manifest", "SkipLog", "read_parallel", "read_text_lines"]
