"""adapter_core: bottleneck, invertible, Compacter, LoRA and prefix-tuning adapters, their placement sites,
AdapterFusion, routing, AdapterDrop's policy, freezing, on-disk format, loading an adapter directory into a host
(``load_adapter_into``) and atomic publishing.

Imports torch and safetensors only; the hosts (``nmt`` for fairseq, ``xling``
for transformers) build on it.
"""

from ._version import __version__
from .bank import IDENTITY, AdapterBank, RoutingPlan, UnknownAdapterError
from .bottleneck import AdapterModule, BottleneckAdapter
from .config import (ATTENTION_KINDS, COMPACTER_KINDS, PRESETS, AdapterConfig, bapna_firat_2019, compacter_2021,
                     compacter_plus_plus_2021, houlsby_2019, lora_2021, madx_invertible, madx_language, madx_task,
                     philip_2020, prefix_tuning_2021)
from .compose import Fuse, Setup, Stack, compose, setup_from_json, setup_names, setup_steps, setup_to_json
from .context import active_adapters, current
from .drop import DROP_MODES, AdapterDropConfig
from .freeze import ParameterSummary, adapter_parameter_names, freeze_base, summarize, trainable_parameters
from .invertible import GLOWCoupling, NICECoupling
from .placement import (ATTENTION_SITES, LEGACY_NAMES, PLACEMENTS, SITE_PREFIX, PlacementError, Site, canonical_placement, check_sites,
                        host_placement, host_placements, placement_sites)
from .flags import (ADAPTER_DROP_MODES, ADAPTER_KINDS, FLAG_HELP, KINDS, AdapterKind, attention_config, compacter_config,
                    drop_config, resolve_kind_placement)
from .io import (AdapterFormatError, ExportTargetError, FingerprintMismatchError, SavedAdapter, atomic_write_bytes,
                 atomic_write_json, atomic_write_text, check_export_target, check_shapes, fingerprint_model,
                 fingerprint_tensors, is_fusion_directory, load_adapter, load_fusion, load_side_tensors,
                 publish_directories, publish_directory, read_adapter_config, save_adapter, save_fusion,
                 save_side_tensors)
from .loading import AdapterSlots, LoadPlan, check_adapter_name, copy_tensors, load_adapter_into
from .registry import build_adapter, known_kinds, register_adapter_kind
from .compacter import CompacterAdapter, PHMLinear, PHMRule, compacter_model_parameter_count, share_phm_rule  # registers "compacter"
from .fusion import AdapterFusionLayer, FusionConfig
from .generated import CONDITION_SLOT, ConditionEmbedding, GeneratedBottleneckAdapter  # registers "generated"
from .lora import LoRAAdapter  # registers "lora"
from .prefix import PrefixEncoder, PrefixTuning, prepend_prefixes, share_prefix_encoder  # registers "prefix_tuning"

__all__ = [
    "__version__",
    "IDENTITY", "AdapterBank", "RoutingPlan", "UnknownAdapterError", "AdapterModule", "BottleneckAdapter", "PRESETS",
    "AdapterConfig", "bapna_firat_2019", "houlsby_2019", "madx_invertible", "madx_language", "madx_task",
    "philip_2020", "Stack", "active_adapters", "current", "setup_from_json", "ParameterSummary",
    "adapter_parameter_names", "freeze_base", "summarize", "trainable_parameters", "GLOWCoupling",
    "NICECoupling", "AdapterFormatError", "ExportTargetError", "check_export_target", "FingerprintMismatchError",
    "SavedAdapter", "atomic_write_bytes",
    "atomic_write_json", "atomic_write_text", "check_shapes", "fingerprint_model", "fingerprint_tensors",
    "load_adapter", "read_adapter_config", "save_adapter", "build_adapter", "known_kinds", "register_adapter_kind",
    "COMPACTER_KINDS", "compacter_2021", "compacter_plus_plus_2021", "Fuse", "CompacterAdapter", "PHMLinear", "PHMRule",
    "compacter_model_parameter_count", "share_phm_rule", "AdapterFusionLayer", "FusionConfig", "LEGACY_NAMES", "PLACEMENTS", "host_placement", "host_placements", "ADAPTER_DROP_MODES",
    "ADAPTER_KINDS", "FLAG_HELP", "KINDS", "AdapterKind", "compacter_config", "drop_config", "resolve_kind_placement",
    "SITE_PREFIX", "PlacementError", "Site", "canonical_placement", "check_sites", "placement_sites", "Setup",
    "compose", "setup_names", "setup_steps", "setup_to_json",
    "DROP_MODES", "AdapterDropConfig", "publish_directories", "publish_directory", "is_fusion_directory",
    "load_fusion", "load_side_tensors", "save_fusion", "save_side_tensors",
    "CONDITION_SLOT", "ConditionEmbedding", "GeneratedBottleneckAdapter",
    "ATTENTION_KINDS", "ATTENTION_SITES", "attention_config", "lora_2021", "prefix_tuning_2021", "LoRAAdapter",
    "PrefixEncoder", "PrefixTuning", "prepend_prefixes", "share_prefix_encoder",
    "AdapterSlots", "LoadPlan", "check_adapter_name", "copy_tensors", "load_adapter_into",
]
