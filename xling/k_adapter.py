"""K-Adapter: adapters outside a frozen encoder that read chosen intermediate layers.

Wang et al. (2021), "K-Adapter: Infusing Knowledge into Pre-Trained Models
with Adapters", Findings of ACL-IJCNLP 2021, 1405-1418.  The pretrained model
is frozen and left unchanged; a K-adapter is a chain of *adapter layers*
beside it.  Adapter layer k reads the encoder's hidden state at a chosen
depth l_k plus the previous adapter layer's output, and maps it through
down-projection -> N small Transformer layers -> up-projection, with a skip
connection around them:

    a_0 = 0,   a_k = s_k + Up(Transformer^N(Down(s_k))),   s_k = h_{l_k} + a_{k-1}

The last adapter layer's output is concatenated with the encoder's last
hidden state, and the task head reads the concatenation (width 2 x hidden):
``KAdapterTaskModel``.

The encoder's hidden states come from transformers' ``output_hidden_states``
(index 0: the embeddings' output, i: the output of layer i), so no forward
code is copied; a MAD-X language adapter hooked into the encoder
(``xling.attach.TransformersHost``) stays active underneath.  The small Transformer
layers are transformers' own ``BertLayer``.

Paper sizes (RoBERTa-large: 24 layers, hidden 1024): adapter layers at
layers 0, 11 and 22, each 2 Transformer layers of hidden 768 (12 heads, FFN
3072), projections initialised N(0, 0.0002).  ``k_adapter_2021`` scales them
to an encoder of another size.  Deviations from the paper and its released code:

- the sizes scale with the hidden size (x hidden/1024: multilingual-e5-small,
  hidden 384 and 12 layers, gets width 288, 12 heads of 24, FFN 1152) and the
  read depths with the depth (0, 6, 11 of 12 for 0, 11, 22 of 24);
- the adapter's Transformer layers mask padding (the released code attends
  to every position, padding included);
- the released code's optional extra skip across adapter layers
  (``adapter_skip_layers``) is left out;
- the paper fine-tunes RoBERTa with the adapters on downstream tasks; here
  the encoder stays frozen and only the K-adapter and the head train, so it
  is compared with task adapters at a like budget;
- one K-adapter (the paper combines a factual and a linguistic one, trained
  on their own pretraining tasks first); here it is trained on the task.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes
from torch import nn
from transformers import BertConfig
from transformers.modeling_outputs import TokenClassifierOutput
from transformers.models.bert.modeling_bert import BertLayer

from adapter_core import (AdapterFormatError, SavedAdapter, atomic_write_bytes, check_shapes, load_adapter,
                          save_adapter)

#: The value of ``KAdapterConfig.kind``, as written in adapter_config.json.
K_ADAPTER_CONFIG_KIND = "k_adapter"
#: The head's tensors, saved beside the K-adapter (the same file name as a task adapter's head).
HEAD_WEIGHTS = "head.safetensors"
#: The paper's encoder (RoBERTa-large), which ``k_adapter_2021`` scales from.
PAPER_HIDDEN, PAPER_LAYERS, PAPER_READ_LAYERS = 1024, 24, (0, 11, 22)


@dataclass(frozen=True)
class KAdapterConfig:
    """What one K-adapter is; enough to rebuild it from disk."""

    # Width of the encoder's hidden states, which each adapter layer reads and writes.
    hidden_dim: int
    # The encoder hidden states the adapter layers read, in order, one adapter layer each: indices into
    # transformers' ``hidden_states`` (0: the embeddings' output, i: the output of layer i; the paper: 0, 11, 22).
    read_layers: tuple[int, ...] = (0, 6, 11)
    # Width inside each adapter layer, between the down- and the up-projection (the paper: 768).
    adapter_dim: int = 288
    # Transformer layers inside each adapter layer (the paper: 2).
    transformer_layers: int = 2
    # Attention heads of those Transformer layers; divides adapter_dim (the paper: 12).
    num_heads: int = 12
    # Feed-forward width of those Transformer layers (the paper: 3072 = 4 x 768).
    intermediate_dim: int = 1152
    # Std of the normal initialisation of the down- and up-projections, biases zero (the paper's code: 0.0002).
    init_range: float = 0.0002
    # Dropout inside the Transformer layers (attention and hidden; the paper's code: 0.1).
    dropout: float = 0.1
    # Marks a K-adapter config on disk; always "k_adapter".
    kind: str = K_ADAPTER_CONFIG_KIND
    # The paper preset this config came from ("k_adapter_2021"), or "" for a custom one.
    preset: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "read_layers", tuple(self.read_layers))
        if self.kind != K_ADAPTER_CONFIG_KIND:
            raise ValueError(f"a K-adapter config has kind {K_ADAPTER_CONFIG_KIND!r}, got {self.kind!r}")
        for name in ("hidden_dim", "adapter_dim", "transformer_layers", "num_heads", "intermediate_dim"):
            if type(getattr(self, name)) is not int or getattr(self, name) <= 0:
                raise ValueError(f"K-adapter {name} must be a positive integer, got {getattr(self, name)!r}")
        if not self.read_layers or any(type(i) is not int or i < 0 for i in self.read_layers):
            raise ValueError(f"K-adapter read_layers must be one or more hidden-state indices >= 0, got {self.read_layers!r}")
        if self.adapter_dim % self.num_heads:
            raise ValueError(f"K-adapter num_heads {self.num_heads} does not divide adapter_dim {self.adapter_dim}")
        if not 0 <= self.dropout < 1 or self.init_range <= 0:
            raise ValueError(f"K-adapter dropout must be in [0, 1) and init_range positive, got {self.dropout}, "
                             f"{self.init_range}")

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "read_layers": list(self.read_layers)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "KAdapterConfig":
        if not isinstance(data, Mapping):
            raise ValueError(f"a K-adapter config is a JSON object, got {type(data).__name__}")
        if data.get("kind") != K_ADAPTER_CONFIG_KIND:
            raise ValueError(f"not a K-adapter config (kind {data.get('kind')!r}, expected {K_ADAPTER_CONFIG_KIND!r})")
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown K-adapter config fields: {', '.join(unknown)}")
        if not isinstance(data.get("read_layers", []), list):
            raise ValueError(f"K-adapter read_layers must be a list, got {data['read_layers']!r}")
        return cls(**dict(data))

    def check_encoder(self, num_layers: int) -> None:
        """A ValueError when a read layer is not a hidden state of an encoder with ``num_layers`` layers."""
        bad = [i for i in self.read_layers if i > num_layers]
        if bad:
            raise ValueError(f"K-adapter read layers {bad} out of range: the encoder has hidden states 0..{num_layers} "
                             f"(0: embeddings, i: output of layer i)")


def k_adapter_2021(hidden_dim: int, num_layers: int, **changes: Any) -> KAdapterConfig:
    """Wang et al. (2021)'s sizes scaled to an encoder of ``hidden_dim`` x ``num_layers``: widths x hidden/1024
    (rounded to whole heads of the paper's 12), read depths x layers/24 (RoBERTa-large: 0, 11, 22)."""
    scale = hidden_dim / PAPER_HIDDEN
    heads = 12
    adapter_dim = max(heads, round(768 * scale / heads) * heads)
    read = tuple(dict.fromkeys(round(i * num_layers / PAPER_LAYERS) for i in PAPER_READ_LAYERS))
    config = KAdapterConfig(hidden_dim=hidden_dim, read_layers=read, adapter_dim=adapter_dim, num_heads=heads,
                            intermediate_dim=4 * adapter_dim, preset="k_adapter_2021")
    return dataclasses.replace(config, **changes)


def k_adapter_parameter_count(config: KAdapterConfig) -> int:
    """Parameters of a K-adapter: per adapter layer the two projections and the Transformer layers
    (q, k, v, attention output, two LayerNorms, the FFN's two matrices), without the task head."""
    h, a, f = config.hidden_dim, config.adapter_dim, config.intermediate_dim
    projections = (h * a + a) + (a * h + h)
    transformer = 4 * (a * a + a) + 2 * a + (a * f + f) + (f * a + a) + 2 * a
    return len(config.read_layers) * (projections + config.transformer_layers * transformer)


def extended_attention_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(batch, length) 1/0 mask -> the additive (batch, 1, 1, length) mask that ``BertLayer`` adds to its scores."""
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class KAdapterLayer(nn.Module):
    """One adapter layer: s + Up(Transformer^N(Down(s))), its Transformer layers transformers' ``BertLayer``."""

    def __init__(self, config: KAdapterConfig):
        super().__init__()
        inner = BertConfig(hidden_size=config.adapter_dim, num_attention_heads=config.num_heads,
                           intermediate_size=config.intermediate_dim, hidden_act="gelu",
                           hidden_dropout_prob=config.dropout, attention_probs_dropout_prob=config.dropout,
                           layer_norm_eps=1e-5)
        inner._attn_implementation = "eager"
        self.down = nn.Linear(config.hidden_dim, config.adapter_dim)
        self.transformer = nn.ModuleList(BertLayer(inner) for _ in range(config.transformer_layers))
        self.up = nn.Linear(config.adapter_dim, config.hidden_dim)
        for projection in (self.down, self.up):
            nn.init.normal_(projection.weight, std=config.init_range)
            nn.init.zeros_(projection.bias)

    def forward(self, state: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = self.down(state)
        for layer in self.transformer:
            hidden = layer(hidden, attention_mask=mask)
        return state + self.up(hidden)


class KAdapter(nn.Module):
    """The chain of adapter layers; reads a tuple of encoder hidden states, returns the last layer's output."""

    def __init__(self, config: KAdapterConfig):
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList(KAdapterLayer(config) for _ in config.read_layers)

    def forward(self, hidden_states: Sequence[torch.Tensor], attention_mask: torch.Tensor) -> torch.Tensor:
        mask = extended_attention_mask(attention_mask, hidden_states[0].dtype)
        output = torch.zeros_like(hidden_states[self.config.read_layers[0]])
        for layer, index in zip(self.layers, self.config.read_layers):
            output = layer(hidden_states[index] + output, mask)
        return output


class KAdapterTaskModel(nn.Module):
    """A frozen encoder, a K-adapter beside it, and a token-level head on [last hidden state; K-adapter output].

    ``encoder`` is a transformers base model (``BertModel``, ``XLMRobertaModel``: a task model's
    ``base_model``); its parameters are frozen here, and it runs without autograd (nothing in it trains), so
    a training step costs one encoder forward plus the K-adapter's forward and backward.
    """

    def __init__(self, encoder: nn.Module, config: KAdapterConfig, num_labels: int, head_dropout: float = 0.1):
        super().__init__()
        num_layers = encoder.config.num_hidden_layers
        config.check_encoder(num_layers)
        if config.hidden_dim != encoder.config.hidden_size:
            raise ValueError(f"K-adapter hidden_dim {config.hidden_dim}, encoder hidden size {encoder.config.hidden_size}")
        self.encoder = encoder.requires_grad_(False)
        self.k_adapter = KAdapter(config)
        self.dropout = nn.Dropout(head_dropout)
        self.classifier = nn.Linear(2 * config.hidden_dim, num_labels)
        self.num_labels = num_labels

    def head_input(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                   token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """[last hidden state; K-adapter output], (batch, length, 2 x hidden)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        with torch.no_grad():
            encoded = self.encoder(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                                   output_hidden_states=True)
        knowledge = self.k_adapter(encoded.hidden_states, attention_mask)
        return torch.cat([encoded.last_hidden_state, knowledge], dim=-1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> TokenClassifierOutput:
        logits = self.classifier(self.dropout(self.head_input(input_ids, attention_mask, token_type_ids)))
        loss = None
        if labels is not None:  # mean over the labelled tokens (-100: not labelled), as the token-classification heads
            loss = nn.functional.cross_entropy(logits.view(-1, self.num_labels).float(), labels.view(-1).to(logits.device),
                                               ignore_index=-100)
        return TokenClassifierOutput(loss=loss, logits=logits)

    def trainable_parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def head_tensors(self) -> dict[str, torch.Tensor]:
        return {f"classifier.{k}": v for k, v in self.classifier.state_dict().items()}


# -- on disk: adapter_core's format (adapter_config.json + adapter_model.safetensors) and the head ---------------


def save_k_adapter(model: KAdapterTaskModel, directory: str | Path, base_fingerprint: str, name: str,
                   metadata: dict | None = None) -> Path:
    """Write the K-adapter (tensors keyed ``layers.{k}.down.weight`` ...) and its head (``HEAD_WEIGHTS``)."""
    directory = Path(directory)
    meta = {"role": "task", "num_layers": model.encoder.config.num_hidden_layers, **(metadata or {})}
    save_adapter(directory, model.k_adapter.state_dict(), model.k_adapter.config, base_fingerprint, name=name,
                 metadata=meta)
    head = {k: v.detach().contiguous().cpu() for k, v in model.head_tensors().items()}
    atomic_write_bytes(directory / HEAD_WEIGHTS, save_safetensors_bytes(head, metadata={"format": "pt"}))
    return directory


def read_k_adapter(directory: str | Path, base_fingerprint: str, force: bool = False) -> SavedAdapter:
    """The saved K-adapter (config a ``KAdapterConfig``); refuses one made for another base unless ``force``."""
    try:
        return load_adapter(directory, expected_fingerprint=base_fingerprint, force=force, config_type=KAdapterConfig)
    except AdapterFormatError as err:
        raise AdapterFormatError(f"{err} (is {directory} a K-adapter written by 'xling train-task --adapter-kind "
                                 f"k-adapter'?)") from None


def load_k_adapter_weights(model: KAdapterTaskModel, saved: SavedAdapter, directory: str | Path) -> None:
    """Copy a saved K-adapter and its head into ``model`` (built with ``saved.config``); shapes and keys checked."""
    where = str(Path(directory))
    check_shapes(saved.tensors, model.k_adapter.state_dict(), where)
    head_path = Path(directory) / HEAD_WEIGHTS
    try:
        head = load_safetensors_bytes(head_path.read_bytes())
    except (SafetensorError, OSError, ValueError) as err:
        raise AdapterFormatError(f"{head_path}: missing or corrupt prediction head ({err})") from None
    check_shapes(head, model.head_tensors(), str(head_path))
    model.k_adapter.load_state_dict(saved.tensors)
    model.classifier.load_state_dict({k.removeprefix("classifier."): v for k, v in head.items()})
