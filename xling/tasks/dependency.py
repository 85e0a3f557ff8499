"""Dependency parsing: a biaffine head on an encoder's word vectors, MST and greedy decoding, UAS/LAS.

Dozat & Manning (2017), "Deep Biaffine Attention for Neural Dependency
Parsing": each word's vector goes through four MLPs (arc-dependent,
arc-head, label-dependent, label-head); the arc score of dependent i and
head j is ``[d_i; 1]^T U h_j`` (the bias term on the dependent side is the
head's prior), the label scores are ``[d_i; 1]^T U_r [h_j; 1]`` for every
relation r; training minimises the cross-entropy of the gold head of each
word plus that of its gold label given the gold head.  UDify and UDapter
(Üstün et al. 2020) put this head on mBERT, a word's vector being its first
sub-token's, the root being the [CLS] position; so does this module.

Decoding: ``mst_heads`` (Chu-Liu/Edmonds, one word attached to the root, as
Dozat & Manning's tree-constrained decoding) or ``greedy_heads`` (each word's
best head, which may not be a tree).  ``attachment_scores`` gives UAS and LAS
over every word, punctuation included (the CoNLL 2018 shared task's rule).

Deviations: MLP sizes 256 (arcs) and 64 (labels), not 500 and 100; LeakyReLU
(0.1) and dropout 0.33 as in Dozat & Manning's code; no POS input (the
encoder's sub-word vectors stand in for the BiLSTM's, as in UDify).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass
class BiaffineConfig:
    """Sizes of the biaffine head."""

    # Width of the encoder's vectors.
    hidden_dim: int = 384
    # Number of dependency relations.
    num_relations: int = 40
    # Width of the arc MLPs (Dozat & Manning: 500).
    arc_dim: int = 256
    # Width of the label MLPs (Dozat & Manning: 100).
    label_dim: int = 64
    # Dropout on the MLP outputs (Dozat & Manning: 0.33).
    dropout: float = 0.33


def _mlp(inputs: int, outputs: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, outputs), nn.LeakyReLU(0.1), nn.Dropout(dropout))


class BiaffineParserHead(nn.Module):
    """Arc scores (batch, n+1, n+1) and label scores at given heads (batch, n+1, relations) from word vectors.

    Row 0 of the vectors is the root ([CLS]); rows 1..n are the words.  Arc
    score ``[i, j]`` is the score of word j being the head of word i.
    """

    def __init__(self, config: BiaffineConfig):
        super().__init__()
        self.config = config
        h, a, r = config.hidden_dim, config.arc_dim, config.label_dim
        self.arc_dep, self.arc_head = _mlp(h, a, config.dropout), _mlp(h, a, config.dropout)
        self.label_dep, self.label_head = _mlp(h, r, config.dropout), _mlp(h, r, config.dropout)
        self.arc_weight = nn.Parameter(torch.zeros(a + 1, a))  # Dozat & Manning initialise U at zero
        self.label_weight = nn.Parameter(torch.zeros(config.num_relations, r + 1, r + 1))

    def arc_scores(self, vectors: torch.Tensor) -> torch.Tensor:
        dep = self.arc_dep(vectors)
        dep = torch.cat([dep, dep.new_ones(dep.shape[:-1] + (1,))], dim=-1)
        return torch.einsum("bia,ac,bjc->bij", dep, self.arc_weight, self.arc_head(vectors))

    def label_scores(self, vectors: torch.Tensor, heads: torch.Tensor) -> torch.Tensor:
        """Scores of every relation for each word i attached to ``heads[b, i]``."""
        dep, head = self.label_dep(vectors), self.label_head(vectors)
        ones = dep.new_ones(dep.shape[:-1] + (1,))
        dep, head = torch.cat([dep, ones], dim=-1), torch.cat([head, ones], dim=-1)
        head_of = head.gather(1, heads.clamp(min=0).unsqueeze(-1).expand(-1, -1, head.shape[-1]))
        return torch.einsum("bia,rac,bic->bir", dep, self.label_weight, head_of)

    def loss(self, vectors: torch.Tensor, heads: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean over words of the head cross-entropy plus the label cross-entropy at the gold head.

        ``mask[b, i]`` is True for words (never for row 0 or padding); candidate heads are the root and the words."""
        arcs = self.arc_scores(vectors)
        candidates = mask.clone()
        candidates[:, 0] = True
        arcs = arcs.masked_fill(~candidates.unsqueeze(1), float("-inf"))
        arc_loss = nn.functional.cross_entropy(arcs[mask], heads[mask])
        label_loss = nn.functional.cross_entropy(self.label_scores(vectors, heads)[mask], labels[mask])
        return arc_loss + label_loss


def greedy_heads(scores: np.ndarray) -> np.ndarray:
    """Each word's best head (rows/columns 0..n, row 0 ignored): may contain cycles or several roots."""
    scores = scores.copy()
    np.fill_diagonal(scores, -np.inf)
    heads = scores.argmax(axis=1)
    heads[0] = -1
    return heads


def _find_cycle(heads: np.ndarray) -> list[int] | None:
    n = len(heads)
    state = [0] * n  # 0 unvisited, 1 on the current path, 2 done
    for start in range(1, n):
        path, node = [], start
        while node > 0 and state[node] == 0:
            state[node] = 1
            path.append(node)
            node = heads[node]
        if node > 0 and state[node] == 1:
            return path[path.index(node):]
        for visited in path:
            state[visited] = 2
    return None


def _chu_liu_edmonds(scores: np.ndarray) -> np.ndarray:
    """The maximum spanning arborescence rooted at 0 of ``scores[dependent, head]`` (-inf: no arc)."""
    heads = greedy_heads(scores)
    cycle = _find_cycle(heads)
    if cycle is None:
        return heads
    n = len(scores)
    in_cycle = np.zeros(n, dtype=bool)
    in_cycle[cycle] = True
    outside = [i for i in range(n) if not in_cycle[i]]  # includes the root 0
    cycle_score = sum(scores[i, heads[i]] for i in cycle)
    # contract the cycle into one node c (index len(outside)) of the smaller graph
    c = len(outside)
    small = np.full((c + 1, c + 1), -np.inf)
    enter_from, leave_to = {}, {}
    for a, u in enumerate(outside):
        for b, v in enumerate(outside):
            if a != b:
                small[a, b] = scores[u, v]
        # arc into the cycle: dependent x in the cycle takes head u, breaking x's cycle arc
        gains = [scores[x, u] - scores[x, heads[x]] for x in cycle]
        best = int(np.argmax(gains))
        small[c, a] = cycle_score + gains[best]
        enter_from[a] = cycle[best]
        # arc out of the cycle: dependent u takes its best head inside the cycle
        heads_in = [scores[u, x] for x in cycle]
        best_out = int(np.argmax(heads_in))
        small[a, c] = heads_in[best_out]
        leave_to[a] = cycle[best_out]
    small_heads = _chu_liu_edmonds(small)
    result = heads.copy()
    for a, u in enumerate(outside):
        if u == 0:
            continue
        result[u] = leave_to[a] if small_heads[a] == c else outside[small_heads[a]]
    entering = small_heads[c]
    result[enter_from[entering]] = outside[entering]
    result[0] = -1
    return result


def mst_heads(scores: np.ndarray, single_root: bool = True) -> np.ndarray:
    """The best tree of ``scores[dependent, head]`` (n+1 square, 0 the root); heads[0] = -1.

    With ``single_root`` exactly one word attaches to the root: each word is
    tried as the only one and the best-scoring tree is kept."""
    scores = np.asarray(scores, dtype=np.float64).copy()
    np.fill_diagonal(scores, -np.inf)
    scores[0, :] = -np.inf
    best = _chu_liu_edmonds(scores)
    if not single_root or (best[1:] == 0).sum() == 1:
        return best
    top, top_score = None, -np.inf
    for root_child in np.nonzero(best == 0)[0]:  # Dozat et al. (2017): keep only one root attachment
        trial = scores.copy()
        trial[1:, 0] = -np.inf
        trial[root_child, 0] = scores[root_child, 0]
        heads = _chu_liu_edmonds(trial)
        total = sum(scores[i, heads[i]] for i in range(1, len(heads)))
        if total > top_score:
            top, top_score = heads, total
    return top


def attachment_scores(gold_heads, gold_labels, pred_heads, pred_labels) -> dict:
    """UAS and LAS (percent) over every word of every sentence; each argument is a list of per-sentence lists."""
    words = unlabelled = labelled = 0
    for gh, gl, ph, pl in zip(gold_heads, gold_labels, pred_heads, pred_labels):
        if len(gh) != len(ph):
            raise ValueError(f"a sentence has {len(gh)} gold words but {len(ph)} predicted")
        for h, l, p, q in zip(gh, gl, ph, pl):
            words += 1
            if h == p:
                unlabelled += 1
                labelled += l == q
    if words == 0:
        raise ValueError("no words to score")
    return {"uas": 100.0 * unlabelled / words, "las": 100.0 * labelled / words, "words": words}
