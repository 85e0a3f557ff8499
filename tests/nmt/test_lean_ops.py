"""nmt.modules.lean_ops: the same outputs and gradients as the stock ops, with a bool mask saved instead of floats."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nmt.modules.lean_ops import LeanDropout, lean_dropout, lean_relu


def saved_bytes(fn, x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """fn(x) and the bytes autograd saved for its backward (per storage, the input excluded)."""
    sizes = {}

    def pack(tensor):
        if tensor.untyped_storage().data_ptr() != x.untyped_storage().data_ptr():
            sizes[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(x)
    return out, sum(sizes.values())


def test_lean_relu_matches_relu_and_saves_a_bool_mask():
    torch.manual_seed(0)
    x = torch.randn(64, 128)
    x[0, :4] = 0.0  # relu's subgradient at 0 is 0 in both
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    stock, stock_saved = saved_bytes(torch.relu, a)
    lean, lean_saved = saved_bytes(lean_relu, b)
    assert torch.equal(stock, lean)
    grad = torch.randn_like(x)
    stock.backward(grad)
    lean.backward(grad)
    assert torch.equal(a.grad, b.grad)
    assert stock_saved == 4 * x.numel() and lean_saved == x.numel()


def test_lean_relu_in_a_frozen_ffn_gives_the_stock_gradients():
    torch.manual_seed(0)
    fc1, fc2 = nn.Linear(16, 64), nn.Linear(64, 16)
    for p in (*fc1.parameters(), *fc2.parameters()):
        p.requires_grad_(False)
    x = torch.randn(8, 16)
    grads = []
    for act in (torch.relu, lean_relu):
        xi = x.clone().requires_grad_()
        fc2(act(fc1(xi))).pow(2).sum().backward()
        grads.append(xi.grad)
    assert torch.equal(*grads)


def test_lean_relu_without_grad_is_plain_relu():
    x = torch.randn(4, 4)
    with torch.no_grad():
        assert torch.equal(lean_relu(x), torch.relu(x))


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_lean_dropout_equals_x_times_noise_with_float_noise_values(p):
    torch.manual_seed(0)
    x = torch.randn(256, 64)
    leaf = x.clone().requires_grad_()
    out, saved = saved_bytes(lambda t: lean_dropout(t, p), leaf)
    kept = out != 0
    noise = kept.float().div_(1 - p)  # what the stock CPU op multiplies by (and saves, as float32)
    assert torch.equal(out, x * noise)
    grad = torch.randn_like(x)
    out.backward(grad)
    reference = x.clone().requires_grad_()
    (reference * noise).backward(grad)
    assert torch.equal(leaf.grad, reference.grad)
    assert saved == x.numel()  # one bool mask
    assert abs(kept.float().mean().item() - (1 - p)) < 0.02


def test_lean_dropout_module_follows_train_and_eval():
    module = LeanDropout(0.3)
    x = torch.randn(32, 32)
    module.eval()
    assert module(x) is x
    module.train()
    assert not torch.equal(module(x), x)
    assert torch.equal(LeanDropout(0.3, apply_during_inference=True).eval()(torch.zeros(3)), torch.zeros(3))
    assert torch.equal(lean_dropout(x, 0.0), x) and torch.equal(lean_dropout(x, 1.0), torch.zeros_like(x))
    with pytest.raises(ValueError, match="probability"):
        lean_dropout(x, 1.5)
