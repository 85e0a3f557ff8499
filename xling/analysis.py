"""Representation similarity: linear CKA and RSA, per layer (torch only).

He et al. (2021), "On the Effectiveness of Adapter-based Tuning for
Pretrained Language Model Adaptation", compare each layer's representations
of an adapter-tuned and a fully fine-tuned model with those of the base
model, and find that adapters drift less.  We measure the similarity with

- linear CKA (Kornblith et al. 2019, "Similarity of Neural Network
  Representations Revisited"): ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F) on
  column-centred X (n x d1), Y (n x d2); 1 for identical representations,
  invariant to orthogonal transforms and isotropic scaling;
- RSA (Kriegeskorte et al. 2008): the Pearson correlation of the upper
  triangles of the two representational dissimilarity matrices (1 - Pearson
  correlation between the rows).

Rows are examples (e.g. non-padding tokens); both inputs must have the same rows.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch


def _check_rows(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if x.dim() != 2 or y.dim() != 2:
        raise ValueError(f"expected 2-D (examples x features) inputs, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"the two representations have {x.shape[0]} and {y.shape[0]} rows; they must describe the same inputs")
    if x.shape[0] < 2:
        raise ValueError("need at least 2 examples")
    return x.double(), y.double()


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA between representations x (n x d1) and y (n x d2) of the same n examples."""
    x, y = _check_rows(x, y)
    x = x - x.mean(0, keepdim=True)
    y = y - y.mean(0, keepdim=True)
    # The feature-space form costs O(n d^2), cheaper than n x n Gram matrices for many tokens.
    cross = torch.linalg.matrix_norm(y.T @ x) ** 2
    norm = torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)
    if norm == 0:
        raise ValueError("CKA is undefined for a constant representation")
    return float(cross / norm)


def dissimilarity_matrix(x: torch.Tensor) -> torch.Tensor:
    """RDM: 1 - Pearson correlation between every pair of rows (n x n)."""
    x = x.double()
    x = x - x.mean(1, keepdim=True)
    x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return 1.0 - x @ x.T


def rsa(x: torch.Tensor, y: torch.Tensor) -> float:
    """Representational similarity: Pearson correlation of the two RDMs' upper triangles."""
    x, y = _check_rows(x, y)
    n = x.shape[0]
    rows, cols = torch.triu_indices(n, n, offset=1)
    a = dissimilarity_matrix(x)[rows, cols]
    b = dissimilarity_matrix(y)[rows, cols]
    a, b = a - a.mean(), b - b.mean()
    denominator = a.norm() * b.norm()
    if denominator == 0:
        raise ValueError("RSA is undefined when all dissimilarities are equal")
    return float((a @ b) / denominator)


SIMILARITIES = {"cka": linear_cka, "rsa": rsa}


def per_layer_similarity(reference: Sequence[torch.Tensor], other: Sequence[torch.Tensor], measure: str = "cka") -> list[float]:
    """Similarity of layer i of ``other`` to layer i of ``reference`` (lists of n x d tensors)."""
    if measure not in SIMILARITIES:
        raise ValueError(f"unknown similarity {measure!r}; known: {', '.join(SIMILARITIES)}")
    if len(reference) != len(other):
        raise ValueError(f"the models have {len(reference)} and {len(other)} layers of representations")
    return [SIMILARITIES[measure](a, b) for a, b in zip(reference, other)]


def drift_table(reference: Sequence[torch.Tensor], models: Mapping[str, Sequence[torch.Tensor]],
                measure: str = "cka") -> dict[str, list[float]]:
    """{model name: per-layer similarity to the reference (base) model}."""
    return {name: per_layer_similarity(reference, states, measure) for name, states in models.items()}
