"""Label-smoothed cross-entropy fused with the vocabulary projection, in row chunks.

The stock path projects every target position onto the vocabulary, keeps the
log-probabilities for backward, and in backward materialises their gradient
and the logits' gradient: four (tokens x vocabulary) fp32 tensors.  At
M2M-100's shape (128,112 rows, 1,024 tokens a batch) that is 0.5 GB each, more
than the activations of the whole frozen network.  ``chunked_label_smoothed_loss``
computes the same loss from the decoder's features and the projection weight,
``chunk`` rows at a time, and keeps only its inputs; backward recomputes each
chunk's logits (one extra (chunk x dim) x (dim x vocabulary) product) and
writes the features' gradient (and the weight's, when it is trained) directly.

The loss is fairseq's ``label_smoothed_nll_loss`` (Szegedy et al. 2016, as in
fairseq's ``label_smoothed_cross_entropy``): with eps_i = eps / (V - 1),
loss = (1 - eps - eps_i) * nll + eps_i * sum_v(-log p_v), summed over the
positions whose target is not ``ignore_index``.  Its gradient with respect to
the logits is p * (1 - eps - eps_i + eps_i * V) - (1 - eps - eps_i) * onehot - eps_i.
"""

from __future__ import annotations

import torch

#: Rows of (features x weight^T) computed at once (256 x 128,112 fp32 logits: 131 MB).
DEFAULT_CHUNK = 256


class _ChunkedLabelSmoothedLoss(torch.autograd.Function):
    """(loss, nll_loss), both summed; see the module docstring."""

    @staticmethod
    def forward(ctx, features, weight, target, epsilon: float, ignore_index: int, chunk: int):
        vocab = weight.size(0)
        eps_i = epsilon / (vocab - 1) if vocab > 1 else 0.0
        loss = features.new_zeros((), dtype=torch.float32)
        nll = features.new_zeros((), dtype=torch.float32)
        for start in range(0, features.size(0), chunk):
            rows, tgt = features[start:start + chunk], target[start:start + chunk]
            logits = (rows @ weight.t()).float()
            lse = torch.logsumexp(logits, dim=-1)
            keep = tgt != ignore_index
            safe = tgt.masked_fill(~keep, 0)
            nll_rows = (lse - logits.gather(1, safe.unsqueeze(1)).squeeze(1)).masked_fill(~keep, 0.0)
            smooth_rows = (vocab * lse - logits.sum(-1)).masked_fill(~keep, 0.0)
            nll += nll_rows.sum()
            loss += ((1.0 - epsilon - eps_i) * nll_rows + eps_i * smooth_rows).sum()
        ctx.save_for_backward(features, weight, target)
        ctx.settings = (epsilon, eps_i, ignore_index, chunk)
        return loss, nll

    @staticmethod
    def backward(ctx, grad_loss, grad_nll):
        features, weight, target = ctx.saved_tensors
        epsilon, eps_i, ignore_index, chunk = ctx.settings
        vocab = weight.size(0)
        want_features, want_weight = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_features = torch.empty_like(features) if want_features else None
        grad_weight = torch.zeros_like(weight, dtype=torch.float32) if want_weight else None
        scale_true = (1.0 - epsilon - eps_i) * grad_loss + grad_nll  # coefficient of (p - onehot)
        for start in range(0, features.size(0), chunk):
            rows, tgt = features[start:start + chunk], target[start:start + chunk]
            keep = tgt != ignore_index
            grad = torch.softmax((rows @ weight.t()).float(), dim=-1)
            # d/dlogits: scale_true * (p - onehot) + grad_loss * eps_i * (V p - 1)
            grad.mul_(scale_true + grad_loss * eps_i * vocab).sub_(grad_loss * eps_i)
            grad.scatter_add_(1, tgt.masked_fill(~keep, 0).unsqueeze(1),
                              (-scale_true).expand(tgt.size(0), 1).to(grad.dtype))
            grad.mul_(keep.unsqueeze(1).to(grad.dtype))
            grad = grad.to(features.dtype)
            if want_features:
                grad_features[start:start + chunk] = grad @ weight
            if want_weight:
                grad_weight.addmm_(grad.t().float(), rows.float())
        if grad_weight is not None:
            grad_weight = grad_weight.to(weight.dtype)
        return grad_features, grad_weight, None, None, None, None


def chunked_label_smoothed_loss(features: torch.Tensor, weight: torch.Tensor, target: torch.Tensor,
                                epsilon: float, ignore_index: int, chunk: int = DEFAULT_CHUNK
                                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed (label-smoothed loss, nll loss) of ``features @ weight.T`` against ``target``.

    ``features``: (tokens x dim); ``weight``: (vocabulary x dim), the output projection (no bias);
    ``target``: (tokens,) ids, positions equal to ``ignore_index`` count for nothing.
    """
    if features.dim() != 2 or weight.dim() != 2 or features.size(1) != weight.size(1):
        raise ValueError(f"features (tokens x dim) and weight (vocabulary x dim) expected, got "
                         f"{tuple(features.shape)} and {tuple(weight.shape)}")
    if target.shape != features.shape[:1]:
        raise ValueError(f"target must hold one id per feature row: {tuple(target.shape)} vs {features.size(0)} rows")
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, got {chunk}")
    return _ChunkedLabelSmoothedLoss.apply(features, weight, target, float(epsilon), int(ignore_index), int(chunk))
