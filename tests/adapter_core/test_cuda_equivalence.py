"""On CUDA, the fast paths of issue 28 equal the paths they replace within float tolerance (skipped without a GPU).

Run on a GPU machine: ``python -m pytest -q tests/adapter_core/test_cuda_equivalence.py``.  The CPU halves of these
checks (the CPU path unchanged bit for bit, the arithmetic of the fused op) are in ``test_gpu_paths.py``.
"""

from __future__ import annotations

import copy
import importlib

import pytest
import torch
from torch import nn

from adapter_core import AdapterBank, AdapterConfig, RoutingPlan, compose
from adapter_core import bottleneck

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
compose_module = importlib.import_module("adapter_core.compose")


def randomised(module: nn.Module) -> nn.Module:
    for parameter in module.parameters():
        nn.init.normal_(parameter, std=0.2)
    return module


def test_fused_bias_relu_equals_unfused_on_cuda(monkeypatch):
    torch.manual_seed(0)
    bank = randomised(AdapterBank(AdapterConfig(hidden_dim=1024, bottleneck_dim=64, input_layer_norm=True), ["a"])).cuda()
    x = torch.randn(80, 1, 1024, device="cuda")
    monkeypatch.setattr(bottleneck, "FUSED_BIAS_RELU", True)
    with torch.inference_mode():
        fused = bank.adapters["a"](x)
        monkeypatch.setattr(bottleneck, "FUSED_BIAS_RELU", False)
        plain = bank.adapters["a"](x)
    assert torch.allclose(fused, plain, rtol=1e-4, atol=1e-4)


def test_batched_routing_equals_loop_on_cuda(monkeypatch):
    torch.manual_seed(0)
    keys = [f"p{i}" for i in range(8)]
    bank = randomised(AdapterBank(AdapterConfig(hidden_dim=256, bottleneck_dim=16, input_layer_norm=True), keys)).cuda()
    plan = RoutingPlan.build(torch.arange(32) % 8, keys)
    x = torch.randn(32, 6, 256, device="cuda", requires_grad=True)
    batched = compose(plan, x, bank.adapters)
    monkeypatch.setattr(compose_module, "BATCHED_ROUTING", False)
    loop = compose(plan, x, bank.adapters)
    assert torch.allclose(batched, loop, rtol=1e-4, atol=1e-4)
    g1, = torch.autograd.grad(batched.square().sum(), x)
    g2, = torch.autograd.grad(loop.square().sum(), x)
    assert torch.allclose(g1, g2, rtol=1e-3, atol=1e-3)


def test_compiled_hooked_encoder_equals_eager_on_cuda():
    from transformers import XLMRobertaConfig, XLMRobertaForTokenClassification

    from adapter_core import Stack
    from xling.attach import TransformersHost

    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=1000, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                              intermediate_size=256, max_position_embeddings=80, type_vocab_size=1, num_labels=5)
    model = XLMRobertaForTokenClassification(config).cuda().eval()
    adapted = copy.deepcopy(model)
    host = TransformersHost(adapted)
    host.add_adapter("en", role="language")
    host.add_adapter("ner", role="task")
    host.set_active(Stack("en", "ner"))
    for module in adapted.modules():
        if hasattr(module, "up") and isinstance(module.up, nn.Linear):
            nn.init.normal_(module.up.weight, std=0.05)
    inputs = {"input_ids": torch.randint(3, 1000, (4, 64), device="cuda"),
              "attention_mask": torch.ones(4, 64, dtype=torch.long, device="cuda")}
    with torch.inference_mode():
        eager = adapted(**inputs).logits
        compiled = torch.compile(adapted, fullgraph=True)(**inputs).logits
    assert torch.allclose(compiled, eager, rtol=1e-3, atol=1e-3)
    assert not torch.allclose(eager, model(**inputs).logits, atol=1e-3)
