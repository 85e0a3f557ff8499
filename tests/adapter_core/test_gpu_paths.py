"""The GPU-only fast paths (issue 28) leave the CPU path bit for bit as it was, and compute the same thing.

- ``bottleneck.FUSED_BIAS_RELU``: at inference on CUDA a ReLU adapter's down-projection runs as one addmm with a
  ReLU epilogue; its arithmetic (``fused_linear_relu``) is checked here on the CPU, and the CPU path never takes it.
- ``compose.BATCHED_ROUTING``: the process-wide default of ``compose(batched=None)``.
- ``torch.compile`` of a model with xling's hooks: one graph, no breaks, the same outputs.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from adapter_core import AdapterBank, AdapterConfig, RoutingPlan, compose
import importlib

from adapter_core import bottleneck
from adapter_core.bottleneck import BottleneckAdapter, fused_linear_relu

compose_module = importlib.import_module("adapter_core.compose")  # the module (the package exports the function)


def trained_adapter(activation: str = "relu") -> BottleneckAdapter:
    torch.manual_seed(0)
    adapter = BottleneckAdapter(AdapterConfig(hidden_dim=16, bottleneck_dim=4, activation=activation,
                                              input_layer_norm=True, init="bert"))
    for parameter in adapter.parameters():
        nn.init.normal_(parameter, std=0.3)
    return adapter


def test_fused_linear_relu_equals_linear_then_relu():
    x = torch.randn(3, 5, 16, generator=torch.Generator().manual_seed(1))
    weight, bias = torch.randn(8, 16), torch.randn(8)
    fused = fused_linear_relu(x, weight, bias)
    assert fused.shape == (3, 5, 8)
    assert torch.allclose(fused, torch.relu(nn.functional.linear(x, weight, bias)), atol=1e-6)
    assert (fused == 0).any()  # the ReLU did clip something, so the check above is not vacuous


def test_cpu_adapter_never_takes_the_fused_path(monkeypatch):
    monkeypatch.setattr(bottleneck, "FUSED_BIAS_RELU", True)
    adapter = trained_adapter()
    x = torch.randn(2, 7, 16, generator=torch.Generator().manual_seed(2))
    expected = x + adapter.up(torch.relu(adapter.down(adapter.layer_norm(x))))  # the formula before issue 28
    monkeypatch.setattr(bottleneck, "fused_linear_relu", lambda *a: pytest.fail("fused path taken on the CPU"))
    with torch.no_grad():
        assert torch.equal(adapter(x), expected)


def test_fused_path_is_used_when_its_conditions_hold(monkeypatch):
    """The dispatch itself: pretend the tensor is on CUDA, and the fused function is what runs (at inference only)."""
    adapter, calls = trained_adapter(), []
    x = torch.randn(2, 3, 16)

    class FakeCuda(torch.Tensor):
        @property
        def is_cuda(self):
            return True

    fake = x.as_subclass(FakeCuda)
    monkeypatch.setattr(bottleneck, "FUSED_BIAS_RELU", True)
    monkeypatch.setattr(bottleneck, "fused_linear_relu", lambda *a: calls.append(1) or torch.relu(nn.functional.linear(*a)))
    with torch.no_grad():
        bottleneck.down_activation(adapter, fake)
    assert calls == [1]
    bottleneck.down_activation(adapter, fake)  # gradients on: the fused op has no backward
    monkeypatch.setattr(bottleneck, "FUSED_BIAS_RELU", False)
    with torch.no_grad():
        bottleneck.down_activation(adapter, fake)
    gelu = trained_adapter("gelu")
    with torch.no_grad():
        bottleneck.down_activation(gelu, fake)
    assert calls == [1]


def test_batched_routing_switch_sets_composes_default(monkeypatch):
    keys = ["a", "b"]
    torch.manual_seed(0)
    bank = AdapterBank(AdapterConfig(hidden_dim=8, bottleneck_dim=3, init="bert"), keys)
    plan = RoutingPlan.build(torch.tensor([0, 1, 1, 0]), keys)
    x = torch.randn(4, 5, 8)
    used = []
    original = compose_module.batched_bottlenecks
    monkeypatch.setattr(compose_module, "batched_bottlenecks", lambda *a, **k: used.append(1) or original(*a, **k))
    loop = compose(plan, x, bank.adapters)
    assert used == []  # the CPU default: the loop
    monkeypatch.setattr(compose_module, "BATCHED_ROUTING", True)
    batched = compose(plan, x, bank.adapters)
    assert used == [1] and torch.allclose(batched, loop, atol=1e-6)
    assert len(used) == 1 and torch.equal(compose(plan, x, bank.adapters, batched=False), loop)  # explicit wins


@pytest.fixture(scope="module")
def tiny_encoder():
    from transformers import XLMRobertaConfig, XLMRobertaForTokenClassification

    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=64, max_position_embeddings=40, type_vocab_size=1, num_labels=5)
    return XLMRobertaForTokenClassification(config).eval()


def hooked_copies(model):
    """Two adapted copies: MAD-X's Stack(language + NICE, task), and Houlsby adapters with layer 0 skipped."""
    import copy

    from adapter_core import Stack, houlsby_2019
    from xling.attach import TransformersHost

    madx = copy.deepcopy(model)
    host = TransformersHost(madx)
    host.add_adapter("en", role="language")
    host.add_adapter("ner", role="task")
    host.set_active(Stack("en", "ner"))
    houlsby = copy.deepcopy(model)
    other = TransformersHost(houlsby)
    other.add_adapter("h", role="task", config=houlsby_2019(32))
    other.set_active("h")
    other.set_skipped_layers([0])
    for adapted in (madx, houlsby):
        for module in adapted.modules():  # trained adapters, not the identity
            if hasattr(module, "up") and isinstance(module.up, nn.Linear):
                nn.init.normal_(module.up.weight, std=0.1)
    return {"madx stack": madx, "houlsby, layer 0 skipped": houlsby}


def test_hooked_models_compile_into_one_graph_with_equal_outputs(tiny_encoder):
    import torch._dynamo as dynamo

    inputs = {"input_ids": torch.randint(3, 100, (2, 9), generator=torch.Generator().manual_seed(4)),
              "attention_mask": torch.ones(2, 9, dtype=torch.long)}
    for name, model in hooked_copies(tiny_encoder).items():
        with torch.no_grad():
            eager = model(**inputs).logits
            explained = dynamo.explain(model)(**inputs)
            assert (explained.graph_count, explained.graph_break_count) == (1, 0), (name, explained.break_reasons)
            dynamo.reset()
            traced = torch.compile(model, backend="aot_eager", fullgraph=True)(**inputs).logits
        assert not torch.equal(eager, tiny_encoder(**inputs).logits), name  # the adapters do act
        assert torch.equal(traced, eager), name


def test_host_compile_does_not_reuse_the_bare_twins_graph(tiny_encoder):
    """Compiled after its bare twin (same class, no hooks), the adapted model still runs its adapters.

    With dynamo's default ``skip_nnmodule_hook_guards=True`` the bare graph is reused and the adapters are
    silently left out (seen on CPU and on the H200); ``TransformersHost.compile`` turns the hook guards on.
    """
    import copy

    import torch._dynamo as dynamo

    from adapter_core import Stack
    from xling.attach import TransformersHost

    dynamo.reset()
    plain = copy.deepcopy(tiny_encoder)
    adapted = copy.deepcopy(tiny_encoder)
    host = TransformersHost(adapted)
    host.add_adapter("en", role="language")
    host.add_adapter("de", role="language")
    host.add_adapter("ner", role="task")
    host.set_active(Stack("en", "ner"))
    for module in adapted.modules():
        if hasattr(module, "up") and isinstance(module.up, nn.Linear):
            nn.init.normal_(module.up.weight, std=0.2)
    inputs = {"input_ids": torch.randint(3, 100, (2, 7), generator=torch.Generator().manual_seed(5))}
    with torch.no_grad():
        bare = torch.compile(plain, backend="aot_eager")(**inputs).logits
        fast = host.compile(backend="aot_eager")
        assert torch.equal(fast(**inputs).logits, adapted(**inputs).logits)
        assert not torch.equal(fast(**inputs).logits, bare)
        host.set_active(Stack("de", "ner"))  # a new setup after compiling is honoured (dynamo recompiles)
        assert torch.equal(fast(**inputs).logits, adapted(**inputs).logits)
    dynamo.reset()
