"""xling: MAD-X (Pfeiffer et al., 2020) on XLM-R and mBERT with Hugging Face transformers.

Language adapters with invertible (NICE) adapters trained by masked LM, task
adapters stacked above them, zero-shot transfer by swapping the language
adapter, AdapterHub interop, and the ``xling`` command line.

The Python API (``xling.madx_model``)::

    from xling import MadxModel, Stack

    model = MadxModel.from_pretrained("xlmr/")      # a local transformers directory
    sw = model.load_adapter("ah/sw")                 # ours or AdapterHub's; the role comes from its config
    ner = model.load_adapter("runs/ner/adapter")
    model.set_active(Stack(sw, ner))
    outputs = model(**model.tokenizer(["..."], return_tensors="pt"))
    model.save_adapter(ner, "ah/ner", format="adapterhub")
    model.save_pretrained("madx/")                   # MadxModel.from_pretrained("madx/") gives it back

* ``MadxModel.from_pretrained(model_dir, model_class=None, force=False, **kwargs)``
* ``.add_adapter(name, role="language", config=None, invertible=True, skip_last_layer=False, layers=None)``
* ``.load_adapter(directory, name=None, role=None, force=False, with_head=False) -> name``
* ``.set_active(setup)``, ``.add_fusion(fuse, config=None)``, ``model(...)`` / ``.forward(...)``
* ``.save_adapter(name, directory, format="ours" | "adapterhub", task=None, labels=None)``
* ``.save_pretrained(directory)``

``Stack`` and ``Fuse`` are ``adapter_core``'s compositions, re-exported here.
Names are imported on first use, so ``import xling.metrics`` stays light.
"""

from importlib import import_module

#: Public name -> the module that defines it.
_EXPORTS = {"MadxModel": "xling.madx_model", "Stack": "adapter_core", "Fuse": "adapter_core"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name == "__version__":  # the one version (adapter_core._version), without importing torch here
        return import_module("adapter_core._version").__version__
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'xling' has no attribute {name!r}")
