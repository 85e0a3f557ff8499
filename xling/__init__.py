"""xling: adapters for cross-lingual transfer on Hugging Face transformers encoders (XLM-R, mBERT, e5).

MAD-X (Pfeiffer et al. 2020): language adapters with invertible (NICE) adapters trained by masked LM, task
adapters stacked above them, zero-shot transfer by swapping the language adapter; Houlsby's placement,
Compacter(++), AdapterDrop, AdapterFusion, K-adapters; AdapterHub interop; the ``xling`` command line.

The Python API (``xling.adapter_model``), in AdapterHub's conventions::

    from xling import AdapterModel, Stack

    model = AdapterModel.from_pretrained("xlmr/")   # a local transformers directory
    sw = model.load_adapter("ah/sw")                 # ours or AdapterHub's; the role comes from its config
    ner = model.load_adapter("runs/ner/adapter")
    model.set_active_adapters(Stack(sw, ner))
    outputs = model(**model.tokenizer(["..."], return_tensors="pt"))
    model.save_adapter("ah/ner", ner, format="adapterhub")
    model.save_pretrained("madx/")                   # AdapterModel.from_pretrained("madx/") gives it back

``AdapterModel`` is an ``nn.Module`` (``add_adapter``, ``train_adapter``, ``set_active_adapters``,
``save_adapter(directory, name)``, ``load_adapter(directory)``, ``save_all_adapters``, ``delete_adapter``);
``TransformersHost`` is the host underneath (hooks on the transformers modules).  ``Stack`` and ``Fuse`` are
``adapter_core``'s compositions, re-exported here.  Names are imported on first use, so
``import xling.metrics`` stays light.
"""

from importlib import import_module

#: Public name -> the module that defines it.
_EXPORTS = {"AdapterModel": "xling.adapter_model", "TransformersHost": "xling.attach", "Stack": "adapter_core",
            "Fuse": "adapter_core"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name == "__version__":  # the one version (adapter_core._version), without importing torch here
        return import_module("adapter_core._version").__version__
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'xling' has no attribute {name!r}")
