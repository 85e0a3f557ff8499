"""nmt.chunked_loss: the same loss and gradients as log_softmax + fairseq's label-smoothed NLL."""

from __future__ import annotations

import pytest
import torch

from nmt.chunked_loss import chunked_label_smoothed_loss


def reference(features, weight, target, epsilon, ignore_index):
    """fairseq's label_smoothed_nll_loss on the full log-probabilities (written out, summed)."""
    lprobs = torch.log_softmax(features @ weight.t(), dim=-1)
    nll = -lprobs.gather(1, target.clamp(min=0).unsqueeze(1)).squeeze(1)
    smooth = -lprobs.sum(-1)
    keep = target != ignore_index
    nll, smooth = nll[keep].sum(), smooth[keep].sum()
    eps_i = epsilon / (weight.size(0) - 1)
    return (1 - epsilon - eps_i) * nll + eps_i * smooth, nll


@pytest.mark.parametrize("chunk", [1, 3, 7, 1000])
@pytest.mark.parametrize("train_weight", [False, True])
def test_loss_and_gradients_match_the_full_projection(chunk, train_weight):
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(11, 6, generator=generator, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(13, 6, generator=generator, dtype=torch.float64, requires_grad=train_weight)
    target = torch.randint(0, 13, (11,), generator=generator)
    target[[2, 5]] = 1  # padding positions count for nothing
    loss, nll = chunked_label_smoothed_loss(features, weight, target, 0.1, ignore_index=1, chunk=chunk)
    ref_loss, ref_nll = reference(features, weight, target, 0.1, 1)
    assert torch.allclose(loss.double(), ref_loss, atol=1e-10) and torch.allclose(nll.double(), ref_nll, atol=1e-10)
    # a backward through both outputs (fairseq logs nll only, but the gradient must hold for any use)
    (2.0 * loss + 0.5 * nll).backward()
    mine = (features.grad.clone(), weight.grad.clone() if train_weight else None)
    features.grad = None
    weight.grad = None
    ref_loss, ref_nll = reference(features, weight, target, 0.1, 1)
    (2.0 * ref_loss + 0.5 * ref_nll).backward()
    assert torch.allclose(mine[0], features.grad, atol=1e-10)
    if train_weight:
        assert torch.allclose(mine[1], weight.grad, atol=1e-10)
    else:
        assert weight.grad is None


def test_bad_shapes_are_one_line_errors():
    with pytest.raises(ValueError, match="one id per feature row"):
        chunked_label_smoothed_loss(torch.zeros(4, 3), torch.zeros(5, 3), torch.zeros(3, dtype=torch.long), 0.1, 1)
    with pytest.raises(ValueError, match="vocabulary x dim"):
        chunked_label_smoothed_loss(torch.zeros(4, 3), torch.zeros(5, 2), torch.zeros(4, dtype=torch.long), 0.1, 1)
