"""Adapters added after the model was moved or cast live where the model does (as AdapterHub's do)."""

from __future__ import annotations

import torch
from transformers import XLMRobertaForMaskedLM

from adapter_core import Fuse, Stack
from conftest import tiny_xlmr_config
from xling.attach import TransformersHost


def test_adapters_and_fusions_follow_the_models_dtype():
    model = XLMRobertaForMaskedLM(tiny_xlmr_config(60)).to(torch.float64)
    host = TransformersHost(model)
    host.add_adapter("en", role="language")
    host.add_adapter("ner", role="task")
    host.add_adapter("pos", role="task")
    host.add_fusion(Fuse("ner", "pos"))
    dtypes = {p.dtype for n, p in model.named_parameters()}
    assert dtypes == {torch.float64}
    host.set_active(Stack("en", Fuse("ner", "pos")))
    out = model(input_ids=torch.tensor([[0, 5, 6, 2]])).logits  # runs: no float/double mismatch
    assert out.dtype == torch.float64
