"""nmt: a fairseq plugin for adapter-based multilingual MT.

Bapna & Firat (2019) pair/domain adapters and Philip et al. (2020) language
adapters on fairseq's Transformer, after each layer or, with
``--adapter-placement houlsby``, at Houlsby et al.'s (2019) two sites per layer.  Load it with ``--user-dir "$(nmt-user-dir)"``
(fairseq imports a user dir by its folder name, ``nmt``).  Registers:

* model ``adapter_transformer`` and the architectures ``adapter_transformer``,
  ``adapter_transformer_big``, ``adapter_m2m100_418m``, ``adapter_m2m100_1_2b``,
  ``adapter_mbart50``;
* task ``adapter_translation`` (``translation_multi_simple_epoch`` plus routing).

Commands and options are described in ``nmt/README.md``.

The Python API, for adapter-only directories (``adapter_config.json`` +
``adapter_model.safetensors``, the format of ``nmt-export-adapters`` and
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

from . import safe_loading  # noqa: F401  (before anything loads a checkpoint)
from . import criterions, models, tasks  # noqa: F401  (importing registers the criterion, model, architectures, task)
from . import one_line_errors
from .adapter_files import export_adapters, load_adapter_dirs
from .checkpoints import load_model

one_line_errors.install()  # under fairseq-train/-generate: bad input is one line, not a traceback

__all__ = ["export_adapters", "load_adapter_dirs", "load_model"]
