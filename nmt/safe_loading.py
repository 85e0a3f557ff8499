"""Let torch >= 2.6 load fairseq checkpoints with ``weights_only=True``.

fairseq's checkpoint files hold tensors, plain containers and, for legacy
(argparse) models and tasks, ``argparse.Namespace`` objects in the saved
config.  In distributed training fairseq also sends the loaded state from
rank 0 to the other ranks through ``torch.save``/``torch.load``; by then the
config is an omegaconf ``DictConfig``, so those ranks also need omegaconf's
container and node classes, and fairseq's ``_TensorPlaceholder``.  The list below is exactly what
``torch.serialization.get_unsafe_globals_in_checkpoint`` reports for both
(base, adapter and resumed checkpoints).  Checkpoints are still pickles:
load only those from a trusted source.
"""

from __future__ import annotations

import argparse
import collections
import typing

import torch
from fairseq.distributed.utils import _TensorPlaceholder
from omegaconf import DictConfig, ListConfig
from omegaconf.base import ContainerMetadata, Metadata
from omegaconf.nodes import AnyNode

FAIRSEQ_CHECKPOINT_GLOBALS = [
    argparse.Namespace,
    # omegaconf config objects, as fairseq broadcasts them between ranks
    DictConfig, ListConfig, ContainerMetadata, Metadata, AnyNode, typing.Any,
    # fairseq's stand-in for a tensor inside a broadcast object (broadcast_object)
    _TensorPlaceholder,
    # plain types omegaconf records as element/key types
    dict, list, int, collections.defaultdict,
]

if hasattr(torch.serialization, "add_safe_globals"):
    torch.serialization.add_safe_globals(FAIRSEQ_CHECKPOINT_GLOBALS)
