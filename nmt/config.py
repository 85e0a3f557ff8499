"""Command-line options of the ``adapter_transformer`` model and the ``adapter_translation`` task.

Each dataclass becomes fairseq flags through ``gen_parser_from_dataclass``
(``adapter_dim`` -> ``--adapter-dim``).  Model options are saved in the
checkpoint; task options are read from the command line of every run, which
is why the options that only matter at generation time (``--adapter-dirs``,
``--missing-adapter``) live on the task.
"""

import copy
from dataclasses import dataclass, field
from typing import Sequence

from fairseq.dataclass import ChoiceEnum, FairseqDataclass

from adapter_core import (ADAPTER_DROP_MODES, ADAPTER_KINDS, COMPACTER_KINDS, FLAG_HELP, KINDS, AdapterConfig,
                          AdapterDropConfig, Site, attention_config, bapna_firat_2019, compacter_config, drop_config,
                          host_placements, houlsby_2019, philip_2020, resolve_kind_placement)

ADAPTER_MODES = ("pair", "lang", "domain", "lang+pair")
MISSING_ADAPTER_POLICIES = ("error", "identity")
ADAPTER_INITS = ("preset", "zero_up", "houlsby", "bert")
LANG_ADAPTER_TRAINING = ("frozen", "trained")
#: The sites fairseq's layers offer (nmt.modules.adapter_layers hooks them): no Pfeiffer site inside the FFN block,
#: and the self-attention's projections (LoRA) but not its keys and values (no prefix tuning).
NMT_SITES = (Site.LAYER, Site.ATTENTION, Site.FFN, Site.QUERY, Site.KEY, Site.VALUE)
#: --adapter-placement choices: output, houlsby, query_value and query_key_value
#: (``adapter_core.placement.host_placements``).
ADAPTER_PLACEMENTS = host_placements(NMT_SITES)


@dataclass
class AdapterModelConfig(FairseqDataclass):
    """Where adapters go and what they are (saved with the model)."""

    adapters_by: ChoiceEnum(ADAPTER_MODES) = field(default="pair", metadata={
        "help": "one adapter per language pair (Bapna & Firat 2019), per language (Philip et al. 2020: "
                "encoder by source, decoder by target language), per domain, or lang+pair: a pair adapter stacked "
                "on the language adapters (encoder: Stack(source, pair), decoder: Stack(target, pair)), so that a "
                "pair can start from its languages' adapters (--adapter-dirs of a lang run)"})
    adapter_lang_training: ChoiceEnum(LANG_ADAPTER_TRAINING) = field(default="frozen", metadata={
        "help": "with --adapters-by lang+pair: 'frozen' (the default) keeps the language adapters as they start "
                "(loaded with --adapter-dirs from a lang run, shared by every pair) while the pair adapters train; "
                "'trained' trains both"})
    adapter_dim: int = field(default=64, metadata={"help": "bottleneck width m of every adapter (--adapter-kind lora: "
                                                           "the rank r)"})
    adapter_lang_dim: int = field(default=0, metadata={
        "help": "with --adapters-by lang+pair: bottleneck width of the language adapters (0: --adapter-dim); the "
                "lang run's --adapter-dim, so that its exported adapters (--adapter-dirs) load in place"})
    adapter_encoder_layers: str = field(default="all", metadata={
        "help": "encoder layers that carry adapters: 'all', 'none' or comma-separated indices from 0"})
    adapter_decoder_layers: str = field(default="all", metadata={
        "help": "decoder layers that carry adapters: 'all', 'none' or comma-separated indices from 0"})
    no_adapter_input_layer_norm: bool = field(default=False, metadata={
        "help": "leave out the LayerNorm on the adapter input (Bapna & Firat 2019 have it)"})
    adapter_init: ChoiceEnum(ADAPTER_INITS) = field(default="preset", metadata={
        "help": "preset: the placement's own (zero_up for output, houlsby for houlsby); "
                "zero_up: up-projection starts at zero, so adapters start as the identity; "
                "houlsby: N(0, 0.01) truncated at 2 std (Houlsby et al. 2019); bert: N(0, 0.02)"})
    adapter_placement: ChoiceEnum(ADAPTER_PLACEMENTS) = field(default="", metadata={
        "help": FLAG_HELP["placement"] + "; nmt's one-per-layer place is output (fairseq's layers have no Pfeiffer "
                "site); houlsby gives the decoder's cross-attention none, and uses Houlsby's init and no input "
                "LayerNorm; filled in and saved with the checkpoint"})
    train_layer_norms: bool = field(default=False, metadata={
        "help": "also train the base's LayerNorms (Houlsby et al. 2019 do), shared by all adapter keys; "
                "such a checkpoint cannot be exported as adapter-only files"})
    adapter_domains: str = field(default="", metadata={
        "help": "with --adapters-by domain: comma-separated domain names, one adapter each "
                "(default: the task's --adapter-domain)"})
    adapter_encoder_keys: str = field(default="", metadata={
        "help": "comma-separated adapter keys of the encoder; default: derived from --lang-pairs "
                "(pair, lang) or --adapter-domains; filled in and saved with the checkpoint"})
    adapter_decoder_keys: str = field(default="", metadata={
        "help": "comma-separated adapter keys of the decoder; default as for --adapter-encoder-keys"})
    adapter_routes: str = field(default="", metadata={
        "help": "the route table's names, as JSON {\"encoder\": {ROUTE_KEY: ADAPTER_KEY}, \"decoder\": {...}}; a route "
                "key is what --adapters-by reads from a sample (its pair, its language, or the domain); default: "
                "each adapter key routes to itself; filled in and saved with the checkpoint (nmt.routing)"})
    adapter_train_base: bool = field(default=False, metadata={
        "help": "also train the base model (full fine-tuning, for comparisons); by default only adapters train"})
    adapter_train_embeddings: bool = field(default=False, metadata={
        "help": "also train the token embeddings and the output projection (a diagnostic beyond Bapna & Firat, "
                "who freeze them: for a language the base barely knows; counts as trainable parameters)"})
    adapter_lean_ops: bool = field(default=False, metadata={
        "help": "with the base frozen, ReLU before a frozen projection and CPU dropout save a bool mask for "
                "backward instead of a float tensor: same results, about 450 MB less at 4,096 tokens x d 512 "
                "x 12 layers, but on CPU about 10%% slower updates (bench/README.md, P2); nmt/modules/lean.py"})
    adapter_kind: ChoiceEnum(ADAPTER_KINDS) = field(default="bottleneck", metadata={"help": FLAG_HELP["kind"]})
    adapter_phm_dim: int = field(default=4, metadata={"help": FLAG_HELP["phm_dim"]})
    adapter_lora_alpha: float = field(default=8.0, metadata={"help": FLAG_HELP["lora_alpha"]})
    adapter_drop_mode: ChoiceEnum(ADAPTER_DROP_MODES) = field(default="none", metadata={"help": FLAG_HELP["drop_mode"]})
    adapter_drop_layers: int = field(default=0, metadata={"help": FLAG_HELP["drop_layers"]})
    adapter_drop_seed: int = field(default=1, metadata={"help": "AdapterDrop robust mode: seed of the per-update draws"})
    adapter_fusion_keys: str = field(default="", metadata={
        "help": "AdapterFusion (Pfeiffer et al. 2021): comma-separated route keys (e.g. the low-resource pair "
                "'en-xx', or language 'xx' with --adapters-by lang) whose samples go through an attention over "
                "the frozen adapters --adapter-fusion-over; only the fusion layers train"})
    adapter_fusion_over: str = field(default="", metadata={
        "help": "AdapterFusion: comma-separated adapter keys to fuse (each side that gets a fusion must hold all)"})
    adapter_fusion_sides: str = field(default="", metadata={
        "help": "AdapterFusion: 'encoder', 'decoder' or both (comma-separated); default: the sides that hold all "
                "fused adapters and route a fused key for --lang-pairs (e.g. only the decoder for the target "
                "language 'xx' of en-xx with --adapters-by lang); filled in and saved with the checkpoint"})


@dataclass
class AdapterTaskConfig(FairseqDataclass):
    """How samples are routed to adapters, and adapters loaded at run time (read from each command line)."""

    missing_adapter: ChoiceEnum(MISSING_ADAPTER_POLICIES) = field(default="error", metadata={
        "help": "a pair/language/domain with no adapter: 'error' names the adapters that exist; "
                "'identity' runs the base model alone for it"})
    adapter_domain: str = field(default="", metadata={
        "help": "with --adapters-by domain: the domain (adapter key) of every sample in this run"})
    adapter_dirs: str = field(default="", metadata={
        "help": "comma-separated adapter directories (nmt export output) loaded on top of the "
                "checkpoint; they replace adapters of the same name.  In training only with --adapters-by "
                "lang+pair: a lang run's language adapters, loaded when the run starts (not on resuming)"})
    adapter_lang_identity: bool = field(default=False, metadata={
        "help": "with --adapters-by lang+pair and frozen language adapters: train the pair adapters over identity "
                "language adapters for the languages --adapter-dirs lacks (without it, such a run is refused)"})
    adapter_force: bool = field(default=False, metadata={
        "help": "load --adapter-dirs even when they were trained on another base model (fingerprint mismatch)"})
    adapter_skip_layers: str = field(default="", metadata={
        "help": "layer ablation / pruning at inference: leave out the adapters of these layers, e.g. "
                "'encoder:0-2,decoder:5' or 'both:0' (indices from 0)"})
    adapter_drop_inference: int = field(default=-1, metadata={
        "help": FLAG_HELP["drop_inference"] + " (-1), on both sides"})


def adapter_drop_config(args) -> "AdapterDropConfig | None":
    """AdapterDrop's policy from --adapter-drop-mode/-layers/-seed (``adapter_core.flags.drop_config``)."""
    return drop_config(str(getattr(args, "adapter_drop_mode", "none")), args.adapter_drop_layers, args.adapter_drop_seed)


def parse_layers(spec: str, num_layers: int, flag: str) -> "tuple[int, ...]":
    """'all' | 'none' | '0,2,5' -> the layer indices, checked against ``num_layers``."""
    spec = (spec or "all").strip()
    if spec == "all":
        return tuple(range(num_layers))
    if spec == "none":
        return ()
    try:
        layers = sorted({int(part) for part in spec.split(",") if part.strip()})
    except ValueError:
        raise ValueError(f"{flag} {spec!r}: expected 'all', 'none' or comma-separated layer indices") from None
    bad = [i for i in layers if not 0 <= i < num_layers]
    if bad:
        raise ValueError(f"{flag} {spec!r}: layers {bad} do not exist; the model has layers 0..{num_layers - 1}")
    return tuple(layers)


SIDES = ("encoder", "decoder")


def parse_skip_layers(spec: str, num_layers: dict[str, int]) -> dict[str, set[int]]:
    """'encoder:0-2,decoder:5,both:0' -> {'encoder': {0, 1, 2}, 'decoder': {0, 5}}, checked against the model."""
    skipped: dict[str, set[int]] = {side: set() for side in SIDES}
    for item in split_list(spec):
        side, _, span = item.partition(":")
        first, _, last = span.partition("-")
        try:
            start, end = int(first), int(last or first)
        except ValueError:
            start = end = -1
        if side not in SIDES + ("both",) or start < 0 or end < start:
            raise ValueError(f"--adapter-skip-layers {spec!r}: item {item!r} is not SIDE:N or SIDE:FIRST-LAST "
                             "with SIDE encoder, decoder or both")
        for name in (SIDES if side == "both" else (side,)):
            if end >= num_layers[name]:
                raise ValueError(f"--adapter-skip-layers {spec!r}: the {name} has layers 0..{num_layers[name] - 1}")
            skipped[name].update(range(start, end + 1))
    return skipped


def split_list(text: str | Sequence[str] | None) -> list[str]:
    """'a,b' -> ['a', 'b']; lists pass through; empty or 'none' -> []."""
    if not text or text == "none":
        return []
    if isinstance(text, str):
        return [part.strip() for part in text.split(",") if part.strip()]
    return [str(part) for part in text]


def resolve_adapter_kind(args) -> None:
    """Write the kind's placement into ``args`` (``adapter_core.flags.resolve_kind_placement``: the kind's own
    when --adapter-placement is not given, a one-line error when the placement makes it another kind)."""
    kind = getattr(args, "adapter_kind", "bottleneck") or "bottleneck"
    placement = getattr(args, "adapter_placement", "")
    takers = [name for name, k in KINDS.items() if placement in k.placements]
    if kind == "bottleneck" and takers:  # e.g. query_value: a base built for a LoRA run's --adapter-dirs
        kind = takers[0]  # (nmt.adapter_files.build_base_with_adapter_layers sets the placement, not the kind)
    args.adapter_kind = kind
    args.adapter_placement = resolve_kind_placement(kind, getattr(args, "adapter_placement", ""), NMT_SITES)


def adapter_module_config(args, hidden_dim: int) -> AdapterConfig:
    """The ``AdapterConfig`` of every adapter: the preset of ``--adapter-placement`` (Bapna & Firat, Philip et
    al. or Houlsby et al.) or of ``--adapter-kind`` (Compacter or Compacter++) with the flags applied."""
    resolve_adapter_kind(args)
    if args.adapter_kind == "lora":  # Hu et al. (2021): rank r = --adapter-dim
        return attention_config("lora", hidden_dim, args.adapter_placement, dim=args.adapter_dim,
                                lora_alpha=getattr(args, "adapter_lora_alpha", 8.0))
    if args.adapter_kind in COMPACTER_KINDS:
        return compacter_config(args.adapter_kind, hidden_dim, args.adapter_placement, bottleneck_dim=args.adapter_dim,
                                phm_dim=args.adapter_phm_dim)
    if args.adapter_placement == "houlsby":
        config = houlsby_2019(hidden_dim, args.adapter_dim)
    else:
        config = (philip_2020 if args.adapters_by == "lang" else bapna_firat_2019)(hidden_dim, args.adapter_dim)
    init = config.init if args.adapter_init == "preset" else args.adapter_init
    changed = config.replace(input_layer_norm=config.input_layer_norm and not args.no_adapter_input_layer_norm,
                             init=init)
    return changed if changed == config else changed.replace(preset="")


def language_adapter_configs(args, hidden_dim: int, keys) -> dict[str, AdapterConfig]:
    """With --adapters-by lang+pair, the config of the language adapters ``keys``: as a lang run makes them
    (Philip et al. 2020), so that its exported adapters load in place; none otherwise."""
    if args.adapters_by != "lang+pair":
        return {}
    lang_args = copy.copy(args)
    lang_args.adapters_by = "lang"
    lang_args.adapter_dim = getattr(args, "adapter_lang_dim", 0) or args.adapter_dim
    config = adapter_module_config(lang_args, hidden_dim)
    return {key: config for key in keys}


def derive_adapter_keys(args, lang_pairs: Sequence[str], task_domain: str = "") -> tuple[list[str], list[str]]:
    """Encoder and decoder adapter keys for ``--adapters-by``, from the language pairs or domains."""
    mode = args.adapters_by
    if mode not in ADAPTER_MODES:
        raise ValueError(f"--adapters-by {mode!r}: expected one of {', '.join(ADAPTER_MODES)}")
    if mode == "domain":
        domains = split_list(args.adapter_domains) or split_list(task_domain)
        if not domains:
            raise ValueError("--adapters-by domain needs --adapter-domains (all domains) or --adapter-domain (this run's)")
        return domains, domains
    pairs = split_list(lang_pairs)
    for pair in pairs:
        if pair.count("-") != 1:
            raise ValueError(f"language pair {pair!r}: expected SRC-TGT such as en-de")
    if mode == "pair":
        return list(pairs), list(pairs)
    sources = sorted({p.split("-")[0] for p in pairs})
    targets = sorted({p.split("-")[1] for p in pairs})
    if mode == "lang+pair":
        return sources + list(pairs), targets + list(pairs)
    return sources, targets
