"""nmt: a fairseq plugin for adapter-based multilingual MT.

Bapna & Firat (2019) pair/domain adapters and Philip et al. (2020) language
adapters on fairseq's Transformer, after each layer or, with
``--adapter-placement houlsby``, at Houlsby et al.'s (2019) two sites per layer.  Load it with ``--user-dir "$(nmt user-dir)"``
(fairseq imports a user dir by its folder name, ``nmt``).  Registers:

* model ``adapter_transformer`` and the architectures ``adapter_transformer``,
  ``adapter_transformer_big``, ``adapter_m2m100_418m``, ``adapter_m2m100_1_2b``,
  ``adapter_mbart50``;
* task ``adapter_translation`` (``translation_multi_simple_epoch`` plus routing).

Commands and options are described in ``docs/nmt.md``.

The Python API, for adapter-only directories (``adapter_config.json`` +
``adapter_model.safetensors``, the format of ``nmt export`` and
``fairseq-generate --adapter-dirs``)::

    import nmt

    model = nmt.load_model("adapters/checkpoint_best.pt")          # an adapter_transformer checkpoint
    paths = nmt.export_adapters(model, "exported", keys=["en-de"])  # exported/en-de/
    base = nmt.load_model("base/checkpoint_best.pt", adapter_dirs=paths)  # the plain base + those adapters

* ``load_model(checkpoint, data=None, adapter_dirs=(), force=False)``: the
  ``AdapterTransformerModel`` of a checkpoint (``nmt.checkpoints``);
* ``export_adapters(model, out_dir, keys=None)``: one directory per adapter key
  (``nmt.adapter_files``);
* ``load_adapter_dirs(model, directories, force=False)``: adapter directories
  onto a model; refuses adapters of another base unless ``force``.

fairseq checkpoints are pickles: load only checkpoints from a trusted source.
torch >= 2.6 loads them with ``weights_only=True``; importing this package
allows exactly the non-tensor types fairseq puts into its checkpoints
(``argparse.Namespace`` and omegaconf's config containers), nothing more.
"""

import logging

# fairseq.tasks.text_to_speech calls logging.basicConfig and logs at INFO that tensorboardX is missing, on every
# import of fairseq; that line is not ours to print (fairseq-train's own logging is unchanged).
logging.getLogger("fairseq.tasks.text_to_speech").setLevel(logging.WARNING)

from . import safe_loading  # noqa: E402,F401  (before anything loads a checkpoint)
from . import criterions, models, tasks  # noqa: E402,F401  (importing registers the criterion, model, architectures, task)
from . import one_line_errors  # noqa: E402
from .adapter_files import export_adapters, load_adapter_dirs
from .checkpoints import load_model
from adapter_core._version import __version__

one_line_errors.install()  # under fairseq-train/-generate: bad input is one line, not a traceback

__all__ = ["__version__", "export_adapters", "load_adapter_dirs", "load_model"]
