"""fairseq criteria of the plugin (importing registers them)."""

from . import chunked_cross_entropy  # noqa: F401
