"""``--criterion chunked_label_smoothed_cross_entropy``: fairseq's label-smoothed cross-entropy without the
(tokens x vocabulary) tensors.

The same loss as fairseq's ``label_smoothed_cross_entropy`` (same options, same logging), computed by
``nmt.chunked_loss`` from the decoder's features (``features_only=True``) and its output
projection, ``--loss-chunk`` target positions at a time.  At M2M-100's vocabulary (128,112 rows) this
removes about 2 GB of logits, log-probabilities and their gradients from a 1,024-token update, for
adapter training and full fine-tuning alike (``bench`` P2); each chunk's logits are computed twice
(forward and backward).  Not supported: ``--report-accuracy`` and an adaptive softmax (both need the
full log-probabilities; a one-line error says so).
"""


from dataclasses import dataclass, field

from fairseq.criterions import register_criterion
from fairseq.criterions.label_smoothed_cross_entropy import (LabelSmoothedCrossEntropyCriterion,
                                                             LabelSmoothedCrossEntropyCriterionConfig)

from nmt.chunked_loss import DEFAULT_CHUNK, chunked_label_smoothed_loss


@dataclass
class ChunkedLabelSmoothedCrossEntropyConfig(LabelSmoothedCrossEntropyCriterionConfig):
    """fairseq's label-smoothed cross-entropy options, plus the chunk size."""

    # Target positions projected onto the vocabulary at once (memory: chunk x vocabulary x 4 bytes).
    # (No "from __future__ import annotations" in this file: fairseq reads these field types at run time.)
    loss_chunk: int = field(default=DEFAULT_CHUNK, metadata={"help": "target positions projected onto the "
                                                                      "vocabulary at once"})


@register_criterion("chunked_label_smoothed_cross_entropy", dataclass=ChunkedLabelSmoothedCrossEntropyConfig)
class ChunkedLabelSmoothedCrossEntropyCriterion(LabelSmoothedCrossEntropyCriterion):
    """fairseq's ``label_smoothed_cross_entropy``, fused with the output projection in chunks."""

    def __init__(self, task, sentence_avg, label_smoothing, ignore_prefix_size=0, report_accuracy=False,
                 loss_chunk=DEFAULT_CHUNK):
        if report_accuracy:
            raise ValueError("--criterion chunked_label_smoothed_cross_entropy: --report-accuracy needs the full "
                             "log-probabilities; use label_smoothed_cross_entropy for it")
        super().__init__(task, sentence_avg, label_smoothing, ignore_prefix_size, report_accuracy)
        self.loss_chunk = loss_chunk

    def forward(self, model, sample, reduce=True):
        decoder = model.decoder
        if getattr(decoder, "adaptive_softmax", None) is not None or getattr(decoder, "output_projection", None) is None:
            raise ValueError("--criterion chunked_label_smoothed_cross_entropy needs a decoder with a plain output "
                             "projection (no adaptive softmax)")
        if not reduce:
            return super().forward(model, sample, reduce=reduce)  # per-token losses: the stock path
        features, _ = model(**sample["net_input"], features_only=True)
        target = model.get_targets(sample, None)
        if self.ignore_prefix_size > 0:
            features, target = features[:, self.ignore_prefix_size:, :], target[:, self.ignore_prefix_size:]
        weight = decoder.output_projection.weight
        loss, nll_loss = chunked_label_smoothed_loss(features.reshape(-1, features.size(-1)), weight,
                                                     target.reshape(-1), self.eps, self.padding_idx, self.loss_chunk)
        sample_size = sample["target"].size(0) if self.sentence_avg else sample["ntokens"]
        logging_output = {"loss": loss.data, "nll_loss": nll_loss.data, "ntokens": sample["ntokens"],
                          "nsentences": sample["target"].size(0), "sample_size": sample_size}
        return loss, sample_size, logging_output
