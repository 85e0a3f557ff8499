"""adapter_core: bottleneck, invertible and Compacter adapters, their placement sites, AdapterFusion, routing,
AdapterDrop's policy, freezing, on-disk format and atomic publishing.

Imports torch and safetensors only; the hosts (``nmt`` for fairseq, ``xling``
for transformers) build on it.
"""

from .bank import IDENTITY, AdapterBank, RoutingPlan, UnknownAdapterError
from .bottleneck import AdapterModule, BottleneckAdapter
from .config import (COMPACTER_KINDS, PRESETS, AdapterConfig, bapna_firat_2019, compacter_2021, compacter_plus_plus_2021, houlsby_2019,
                     madx_invertible, madx_language, madx_task, philip_2020)
from .compose import Fuse, Setup, Stack, compose, setup_from_json, setup_names, setup_steps, setup_to_json
from .context import active_adapters, current
from .drop import DROP_MODES, AdapterDropConfig
from .freeze import ParameterSummary, adapter_parameter_names, freeze_base, summarize, trainable_parameters
from .invertible import GLOWCoupling, NICECoupling
from .placement import (ALIASES, PLACEMENTS, SITE_PREFIX, PlacementError, Site, canonical_placement, check_sites,
                        placement_sites)
from .io import (AdapterFormatError, FingerprintMismatchError, SavedAdapter, atomic_write_bytes, atomic_write_json,
                 atomic_write_text, check_shapes, fingerprint_model, fingerprint_tensors, load_adapter,
                 publish_directories, publish_directory, read_adapter_config, save_adapter)
from .registry import build_adapter, known_kinds, register_adapter_kind
from .compacter import CompacterAdapter, PHMLinear, PHMRule, compacter_model_parameter_count, share_phm_rule  # registers "compacter"
from .fusion import AdapterFusionLayer, FusionConfig
from .generated import CONDITION_SLOT, ConditionEmbedding, GeneratedBottleneckAdapter  # registers "generated"

__all__ = [
    "IDENTITY", "AdapterBank", "RoutingPlan", "UnknownAdapterError", "AdapterModule", "BottleneckAdapter", "PRESETS",
    "AdapterConfig", "bapna_firat_2019", "houlsby_2019", "madx_invertible", "madx_language", "madx_task",
    "philip_2020", "Stack", "active_adapters", "current", "setup_from_json", "ParameterSummary",
    "adapter_parameter_names", "freeze_base", "summarize", "trainable_parameters", "GLOWCoupling",
    "NICECoupling", "AdapterFormatError", "FingerprintMismatchError", "SavedAdapter", "atomic_write_bytes",
    "atomic_write_json", "atomic_write_text", "check_shapes", "fingerprint_model", "fingerprint_tensors",
    "load_adapter", "read_adapter_config", "save_adapter", "build_adapter", "known_kinds", "register_adapter_kind",
    "COMPACTER_KINDS", "compacter_2021", "compacter_plus_plus_2021", "Fuse", "CompacterAdapter", "PHMLinear", "PHMRule",
    "compacter_model_parameter_count", "share_phm_rule", "AdapterFusionLayer", "FusionConfig", "ALIASES", "PLACEMENTS",
    "SITE_PREFIX", "PlacementError", "Site", "canonical_placement", "check_sites", "placement_sites", "Setup",
    "compose", "setup_names", "setup_steps", "setup_to_json",
    "DROP_MODES", "AdapterDropConfig", "publish_directories", "publish_directory",
    "CONDITION_SLOT", "ConditionEmbedding", "GeneratedBottleneckAdapter",
]
