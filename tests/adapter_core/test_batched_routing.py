"""compose()'s batched path for mixed batches equals the loop over groups (within float rounding)."""

from __future__ import annotations

import pytest
import torch

from adapter_core import AdapterBank, AdapterConfig, RoutingPlan, Stack, compose
from adapter_core.compose import batched_bottlenecks

KEYS = ["en-de", "de-en", "en-fr"]


def bank(layer_norm: bool) -> AdapterBank:
    torch.manual_seed(0)
    built = AdapterBank(AdapterConfig(hidden_dim=8, bottleneck_dim=3, init="bert", input_layer_norm=layer_norm),
                        KEYS, batch_dim=1)
    for parameter in built.parameters():  # trained adapters: nothing at its initial value
        torch.nn.init.normal_(parameter, std=0.3)
    return built


@pytest.mark.parametrize("layer_norm", [True, False])
@pytest.mark.parametrize("batch_dim", [0, 1])
def test_batched_equals_the_loop_forward_and_backward(layer_norm, batch_dim):
    adapters = bank(layer_norm).adapters
    ids = torch.tensor([2, 0, 0, 1, 2, 1, 0])
    plan = RoutingPlan.build(ids, KEYS)
    shape = (7, 5, 8) if batch_dim == 0 else (5, 7, 8)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1), requires_grad=True)
    results = {}
    for batched in (False, True):
        out = compose(plan, x, adapters, batch_dim=batch_dim, batched=batched)
        grads = torch.autograd.grad((out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum(),
                                    [x, *adapters.parameters()])
        results[batched] = (out, grads)
    assert torch.allclose(results[True][0], results[False][0], atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(results[True][1], results[False][1]))
    # and each sample got its own adapter: sample 1 (en-de) as the en-de adapter alone
    alone = adapters["en-de"](x.select(batch_dim, 1))
    assert torch.allclose(results[True][0].select(batch_dim, 1), alone, atol=1e-6)


def test_groups_that_are_setups_fall_back_to_the_loop():
    adapters = bank(True).adapters
    plan = RoutingPlan.build(torch.tensor([0, 1, 0]), [Stack("en-de", "de-en"), "en-fr"])
    x = torch.randn(3, 2, 8)
    assert batched_bottlenecks(plan, x, adapters) is None
    assert torch.allclose(compose(plan, x, adapters, batched=True), compose(plan, x, adapters, batched=False))
