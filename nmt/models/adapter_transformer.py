"""``adapter_transformer``: fairseq's Transformer with adapter banks in its layers.

Bapna & Firat (2019), "Simple, Scalable Adaptation for Neural Machine
Translation", and Philip et al. (2020), "Monolingual Adapters for Zero-Shot
Neural Machine Translation".  The model, encoder and decoder subclass
fairseq's and hook in through ``build_encoder``/``build_decoder`` and
``build_encoder_layer``/``build_decoder_layer``; every forward calls
``super()``.  Routing is per sample (see ``nmt.routing``).

Houlsby et al. (2019) place two adapters per layer (``--adapter-placement
houlsby``, see ``nmt.modules.adapter_layers``) and train the base's
LayerNorms with them (``--train-layer-norms``).

Beyond the papers (all through the same banks): Compacter++ adapters
(``--adapter-kind compacter++``; Compacter, at Houlsby's sites, with ``--adapter-kind compacter``),
AdapterDrop (``--adapter-drop-mode``),
AdapterFusion over frozen pair or language adapters (``--adapter-fusion-keys``,
``--adapter-fusion-over``), and leaving out the adapters of chosen layers at
inference (the task's ``--adapter-skip-layers``).

Routing (``nmt.routing``): the route table is built with the model, each
sample's ids come from its ``src_lang_id``/``tgt_lang_id``, and the
decoder's ride on ``encoder_out``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict

import torch

from fairseq.dataclass.utils import gen_parser_from_dataclass
from fairseq.distributed import fsdp_wrap
from fairseq.models import register_model
from fairseq.models.transformer import TransformerConfig, TransformerDecoderBase, TransformerEncoderBase, TransformerModel
from fairseq.modules.checkpoint_activations import checkpoint_wrapper

from adapter_core import (COMPACTER_KINDS, AdapterFusionLayer, adapter_parameter_names, freeze_base, share_phm_rule,
                          summarize)
from adapter_core.drop import AdapterDropConfig

from ..config import (AdapterModelConfig, adapter_drop_config, adapter_module_config, derive_adapter_keys,
                      language_adapter_configs,
                      parse_layers, resolve_adapter_kind, split_list)
from ..modules import AdapterDecoderLayer, AdapterEncoderLayer
from ..modules.lean import use_lean_ops
from ..routing import (DECODER_ROUTE_KEY, AdapterRoute, DecoderRoute, RouteTable, RoutingError, SideRoute, call_kwargs,
                       derive_routes, model_route_table, read_routes, routing_plan, stacked_below, write_routes)

logger = logging.getLogger(__name__)


def _wrap_layer(layer, cfg):
    """fairseq's activation checkpointing and FSDP wrapping, as in its own ``build_*_layer``."""
    checkpoint = cfg.checkpoint_activations
    if checkpoint:
        layer = checkpoint_wrapper(layer, offload_to_cpu=cfg.offload_activations)
    min_params_to_wrap = cfg.min_params_to_wrap if not checkpoint else 0
    return fsdp_wrap(layer, min_num_params=min_params_to_wrap)


class AdapterTransformerEncoder(TransformerEncoderBase):
    """Encoder whose chosen layers carry adapter banks, routed by the source side of each sample."""

    def __init__(self, cfg, dictionary, embed_tokens, adapter_config, adapter_keys, adapter_layers,
                 key_configs=None):
        # Plain attributes, set before nn.Module.__init__ because the parent builds the layers.
        # Names of the route table's adapter ids (``set_route_table``; the ids are the buffer ``route_ids``).
        self.route_key_names = ()
        self.adapter_config = adapter_config
        self.adapter_keys = tuple(adapter_keys)
        # Adapter keys with a config of their own (lang+pair: the language adapters).
        self.adapter_key_configs = dict(key_configs or {})
        self.adapter_layers = frozenset(adapter_layers)
        self._next_layer_index = 0
        # AdapterDrop outside training: the lowest layers that run without adapters.
        self.inference_dropped_layers = 0
        # AdapterDrop in training: the count the task set for the current update.
        self.update_dropped_layers = 0
        super().__init__(cfg, dictionary, embed_tokens)

    def build_encoder_layer(self, cfg):
        index, self._next_layer_index = self._next_layer_index, self._next_layer_index + 1
        if index not in self.adapter_layers:
            return super().build_encoder_layer(cfg)
        layer = AdapterEncoderLayer(cfg, self.adapter_config, self.adapter_keys, return_fc=self.return_fc,
                                    layer_index=index, key_configs=self.adapter_key_configs)
        return _wrap_layer(layer, cfg)

    def forward(self, src_tokens, src_lengths=None, return_all_hiddens: bool = False, token_embeddings=None,
                src_lang_id=None, tgt_lang_id=None, adapter_route: AdapterRoute | None = None):
        """fairseq's forward, routed by each sample's languages (``adapter_route``: keys picked by hand)."""
        route = adapter_route or self.route(src_lang_id, tgt_lang_id)
        batch = src_tokens.size(0)
        if route.encoder_ids.numel() != batch or route.decoder_ids.numel() != batch:
            raise RoutingError(f"adapter route holds {route.encoder_ids.numel()} encoder and "
                               f"{route.decoder_ids.numel()} decoder ids for a batch of {batch} sentences")
        side = SideRoute(plan=routing_plan(route.encoder_ids, route.key_names, src_tokens.device),
                         dropped_layers=dropped_layers(self))
        with call_kwargs(routed_layers(self), adapter_route=side):
            encoder_out = super().forward(src_tokens, src_lengths, return_all_hiddens, token_embeddings)
        encoder_out[DECODER_ROUTE_KEY] = [DecoderRoute.build(route.decoder_ids.to(src_tokens.device), route.key_names)]
        return encoder_out

    def route(self, src_lang_id, tgt_lang_id) -> AdapterRoute:
        """Each sample's adapter ids, looked up in the route table by its source and target language ids."""
        if src_lang_id is None or tgt_lang_id is None:
            raise RoutingError(f"{type(self).__name__} routes each sample by src_lang_id and tgt_lang_id; run it "
                               "through the task 'adapter_translation' (fairseq-train/generate/interactive --task "
                               "adapter_translation), which passes both, or pass adapter_route=AdapterRoute(...)")
        if self.route_table is None:
            raise RoutingError(f"{type(self).__name__} has no route table; build the model with the task "
                               "'adapter_translation'")
        return self.route_table.route(src_lang_id, tgt_lang_id)

    def set_route_table(self, table: RouteTable) -> None:
        """Route by ``table`` from now on; its ids are a buffer (they move with the model, and are not saved)."""
        self.route_key_names = table.key_names
        self.register_buffer("route_ids", table.ids.to(self.embed_tokens.weight.device), persistent=False)

    @property
    def route_table(self) -> RouteTable | None:
        ids = getattr(self, "route_ids", None)
        return None if ids is None else RouteTable(key_names=self.route_key_names, ids=ids)

    def reorder_encoder_out(self, encoder_out, new_order):
        """Reorder as fairseq does, and the decoder's adapter route with it (beam search)."""
        reordered = super().reorder_encoder_out(encoder_out, new_order)
        if encoder_out.get(DECODER_ROUTE_KEY):
            reordered[DECODER_ROUTE_KEY] = [encoder_out[DECODER_ROUTE_KEY][0].reordered(new_order)]
        return reordered


class AdapterTransformerDecoder(TransformerDecoderBase):
    """Decoder whose chosen layers carry adapter banks, routed by the ids the encoder passed on."""

    def __init__(self, cfg, dictionary, embed_tokens, adapter_config, adapter_keys, adapter_layers,
                 no_encoder_attn=False, key_configs=None):
        self.adapter_config = adapter_config
        self.adapter_keys = tuple(adapter_keys)
        # Adapter keys with a config of their own (lang+pair: the language adapters).
        self.adapter_key_configs = dict(key_configs or {})
        self.adapter_layers = frozenset(adapter_layers)
        self._next_layer_index = 0
        # AdapterDrop outside training: the lowest layers that run without adapters.
        self.inference_dropped_layers = 0
        # AdapterDrop in training: the count the task set for the current update.
        self.update_dropped_layers = 0
        super().__init__(cfg, dictionary, embed_tokens, no_encoder_attn=no_encoder_attn)

    def build_decoder_layer(self, cfg, no_encoder_attn=False):
        index, self._next_layer_index = self._next_layer_index, self._next_layer_index + 1
        if index not in self.adapter_layers:
            return super().build_decoder_layer(cfg, no_encoder_attn)
        layer = AdapterDecoderLayer(cfg, self.adapter_config, self.adapter_keys, no_encoder_attn=no_encoder_attn,
                                    layer_index=index, key_configs=self.adapter_key_configs)
        return _wrap_layer(layer, cfg)

    def extract_features(self, prev_output_tokens, encoder_out, incremental_state=None,
                         full_context_alignment=False, alignment_layer=None, alignment_heads=None):
        routes = encoder_out.get(DECODER_ROUTE_KEY) if encoder_out is not None else None
        if not routes:
            raise RoutingError(f"{type(self).__name__}: encoder_out carries no adapter route; the decoder reads its "
                               "ids from the output of adapter_transformer's encoder")
        side = SideRoute(plan=routes[0].plan, dropped_layers=dropped_layers(self))
        with call_kwargs(routed_layers(self), adapter_route=side):
            return super().extract_features(prev_output_tokens, encoder_out, incremental_state,
                                            full_context_alignment, alignment_layer, alignment_heads)

    def output_layer(self, features):
        """fairseq's vocabulary projection, given the features as one (tokens x dim) matrix.

        The features are a batch-major view of the time-major state.  With the
        base frozen (the projection weight has requires_grad=False), torch's
        matmul does not fold such a view into one matrix product and runs a
        batched product over a weight expanded per sentence (per hypothesis in
        beam search) instead: beam-5 generation took 2.5x the plain base's time
        (bench P3).  A 2-D input always takes the single matrix product.
        """
        if self.adaptive_softmax is not None:
            return super().output_layer(features)
        logits = super().output_layer(features.reshape(-1, features.size(-1)))
        return logits.view(*features.shape[:-1], logits.size(-1))


def dropped_layers(stack) -> int:
    """AdapterDrop: how many of the lowest layers of ``stack`` run without adapters in this forward."""
    return stack.update_dropped_layers if stack.training else stack.inference_dropped_layers


def routed_layers(stack) -> list:
    """The layers of an encoder or decoder that carry adapters (they take the ``adapter_route`` argument)."""
    return [layer for layer in all_layers(stack) if hasattr(layer, "site_banks")]


def all_layers(stack) -> list:
    """Every layer of an encoder or decoder, in order.

    With --encoder-layerdrop/--decoder-layerdrop (M2M-100's checkpoints record 0.05), fairseq keeps the
    layers in a ``LayerDropModuleList``, whose iterator leaves out layers at random in training mode:
    ``enumerate(stack.layers)`` would then number the layers wrongly.  Indexing never drops any.
    """
    return [stack.layers[i] for i in range(len(stack.layers))]


def fill_adapter_defaults(args) -> None:
    """Give ``args`` every adapter option (checkpoints made without adapters lack them)."""
    for option in dataclasses.fields(AdapterModelConfig):
        if not hasattr(args, option.name):
            setattr(args, option.name, option.default)
    resolve_adapter_kind(args)


@register_model("adapter_transformer")
class AdapterTransformerModel(TransformerModel):
    """fairseq's ``transformer`` with Bapna & Firat (2019) / Philip et al. (2020) or Houlsby et al. (2019) adapters.

    The base is frozen unless ``--adapter-train-base`` (its LayerNorms train with
    ``--train-layer-norms``); its keys are those of the plain Transformer, so base
    checkpoints load unchanged (``upgrade_state_dict_named`` adds the adapter
    tensors they lack).
    """

    @classmethod
    def add_args(cls, parser):
        super().add_args(parser)
        gen_parser_from_dataclass(parser, AdapterModelConfig())

    @classmethod
    def build_model(cls, args, task):
        fill_adapter_defaults(args)
        pairs = getattr(task, "model_lang_pairs", None) or split_list(getattr(args, "lang_pairs", None))
        if not args.adapter_encoder_keys and not args.adapter_decoder_keys:
            encoder_keys, decoder_keys = derive_adapter_keys(args, pairs, getattr(args, "adapter_domain", ""))
            # Written back so that the checkpoint records the keys (generation sees one pair only).
            args.adapter_encoder_keys, args.adapter_decoder_keys = ",".join(encoder_keys), ",".join(decoder_keys)
        if not args.adapter_routes:  # written back too: the checkpoint records the route table's names
            keys = {"encoder": split_list(args.adapter_encoder_keys), "decoder": split_list(args.adapter_decoder_keys)}
            args.adapter_routes = write_routes(derive_routes(args.adapters_by, keys))
        model = super().build_model(args, task)
        if args.adapter_kind in COMPACTER_KINDS:
            model.share_phm_rules()
        fusion_names, fusion_over = split_list(args.adapter_fusion_keys), split_list(args.adapter_fusion_over)
        if args.train_layer_norms and (fusion_names or fusion_over):
            raise ValueError("--train-layer-norms: AdapterFusion trains the fusion layers only; leave one of them out")
        if fusion_names and not args.adapter_fusion_sides:  # written back, so that generation builds the same
            args.adapter_fusion_sides = ",".join(model.fusion_sides(fusion_names, fusion_over, pairs))
        fused = model.add_fusions(fusion_names, fusion_over, split_list(args.adapter_fusion_sides))
        model.check_adapter_drop()
        drop = model.adapter_drop()
        model.set_inference_dropped_layers(drop.dropped_at_inference() if drop is not None else 0)
        if args.adapter_train_base:
            summary = summarize(model)
        elif fused:  # AdapterFusion trains over frozen adapters: only the fusion layers learn
            summary = freeze_base(model, train_adapters=False, extra_trainable=lambda n: ".adapter_bank.fusions." in n)
        else:
            summary = freeze_base(model, train_layer_norms=args.train_layer_norms)  # Houlsby et al. train them
            if args.adapter_train_embeddings:
                model.unfreeze_embeddings()
            if args.adapter_train_embeddings or model.freeze_language_adapters():
                summary = summarize(model)
        if getattr(args, "checkpoint_activations", False) and not args.adapter_train_base:
            model.make_embeddings_require_grad()
        if args.adapter_lean_ops and not args.adapter_train_base:
            use_lean_ops(model)
        logger.info("adapters by %s; %s", args.adapters_by, summary.format())
        for key, count in sorted(adapter_parameter_counts(model).items()):
            logger.info("adapter %s: %s parameters", key, f"{count:,}")
        return model

    @classmethod
    def build_encoder(cls, args, src_dict, embed_tokens):
        cfg = TransformerConfig.from_namespace(args)
        layers = parse_layers(args.adapter_encoder_layers, cfg.encoder.layers, "--adapter-encoder-layers")
        config = adapter_module_config(args, cfg.encoder.embed_dim)
        below = stacked_below(read_routes(args.adapter_routes))
        languages = language_adapter_configs(args, cfg.encoder.embed_dim, below)
        return AdapterTransformerEncoder(cfg, src_dict, embed_tokens, config,
                                         split_list(args.adapter_encoder_keys), layers, key_configs=languages)

    @classmethod
    def build_decoder(cls, args, tgt_dict, embed_tokens):
        cfg = TransformerConfig.from_namespace(args)
        layers = parse_layers(args.adapter_decoder_layers, cfg.decoder.layers, "--adapter-decoder-layers")
        config = adapter_module_config(args, cfg.decoder.embed_dim)
        below = stacked_below(read_routes(args.adapter_routes))
        languages = language_adapter_configs(args, cfg.decoder.embed_dim, below)
        return AdapterTransformerDecoder(cfg, tgt_dict, embed_tokens, config, split_list(args.adapter_decoder_keys),
                                         layers, no_encoder_attn=cfg.no_cross_attention, key_configs=languages)

    def forward(self, src_tokens, src_lengths, prev_output_tokens, src_lang_id=None, tgt_lang_id=None,
                adapter_route: AdapterRoute | None = None, **kwargs):
        """fairseq's forward; the encoder gets each sample's language ids (``src_lang_id`` from
        ``--enable-lang-ids``, ``tgt_lang_id`` added by the task), or ``adapter_route`` (keys picked by hand)."""
        with call_kwargs([self.encoder], src_lang_id=src_lang_id, tgt_lang_id=tgt_lang_id, adapter_route=adapter_route):
            return super().forward(src_tokens, src_lengths, prev_output_tokens, **kwargs)

    # -- routing ---------------------------------------------------------------
    def set_routing(self, languages: list[str], domain: str = "", missing: str = "error") -> None:
        """Build the route table for the language dictionary ``languages`` (``nmt.routing.model_route_table``);
        the task calls it when it builds the model, and again after ``--adapter-dirs`` bring new adapters."""
        self.routing_inputs = (list(languages), domain, missing)
        self.encoder.set_route_table(model_route_table(self, languages, domain, missing))

    def adapter_route(self, src_lang_id: torch.Tensor, tgt_lang_id: torch.Tensor) -> AdapterRoute:
        """The route of samples with these language ids (what the encoder looks up)."""
        return self.encoder.route(src_lang_id, tgt_lang_id)

    def freeze_language_adapters(self) -> bool:
        """lang+pair with --adapter-lang-training frozen: the adapters below the pair adapters do not train."""
        if self.args.adapters_by != "lang+pair" or self.args.adapter_lang_training != "frozen":
            return False
        below = stacked_below(read_routes(self.args.adapter_routes))
        for name, param in self.named_parameters():
            if ".adapters." in name and name.split(".adapters.")[1].split(".")[0] in below:
                param.requires_grad_(False)
        return True

    def set_training_dropped_layers(self, count: int) -> None:
        """AdapterDrop in training: the lowest ``count`` layers of both sides run without adapters (this update)."""
        self.encoder.update_dropped_layers = self.decoder.update_dropped_layers = count

    def upgrade_state_dict_named(self, state_dict, name):
        """Add the adapter tensors a checkpoint lacks (a base made without adapters), from this model's init."""
        super().upgrade_state_dict_named(state_dict, name)
        prefix = f"{name}." if name else ""
        own = self.state_dict()
        filled = [key for key in sorted(adapter_parameter_names(self)) if prefix + key not in state_dict]
        for key in filled:
            state_dict[prefix + key] = own[key].detach().clone()
        if filled:
            logger.info("checkpoint has no tensors for %d adapter parameters; using their initial values", len(filled))

    def load_state_dict(self, state_dict, strict=True, model_cfg=None, args=None):
        """Load strictly, then the adapter directories the task asked for (``--adapter-dirs``)."""
        result = super().load_state_dict(state_dict, strict=strict, model_cfg=model_cfg, args=args)
        pending = getattr(self, "adapter_dirs_to_load", None)
        if pending:
            from ..adapter_files import load_adapter_dirs

            load_adapter_dirs(self, pending, force=getattr(self, "adapter_force", False),
                              only_existing=getattr(self, "adapter_dirs_only_existing", False))
            self.freeze_language_adapters()  # a directory may have replaced a module
            if getattr(self, "routing_inputs", None) is not None:
                self.set_routing(*self.routing_inputs)  # the directories may bring adapters the table lacks
        return result

    # -- Compacter, AdapterFusion, AdapterDrop ------------------------------
    def share_phm_rules(self) -> None:
        """Compacter: one set of A_i per adapter key, shared by all its layers on both sides (the paper shares
        A across the layers of one task; per key keeps pairs independent, so each exports on its own)."""
        by_key = defaultdict(list)
        for side in ("encoder", "decoder"):
            for _, _, bank in self.adapter_site_banks(side):
                for key, module in bank.adapters.items():
                    by_key[key].append(module)
        for modules in by_key.values():
            share_phm_rule(modules)

    def fusion_sides(self, names: list[str], over: list[str], pairs: list[str]) -> list[str]:
        """The sides that hold every adapter in ``over`` and, where ``pairs`` tell, route one of ``names``."""
        holding = [side for side in ("encoder", "decoder")
                   if self.adapter_banks(side) and set(over) <= set(self.adapter_keys(side))]
        if not holding:
            raise ValueError(f"--adapter-fusion-over {','.join(over)}: neither side has all of these adapters "
                             f"(encoder: {', '.join(self.adapter_keys('encoder')) or 'none'}; "
                             f"decoder: {', '.join(self.adapter_keys('decoder')) or 'none'})")
        try:
            routed = dict(zip(("encoder", "decoder"), derive_adapter_keys(self.args, pairs, "")))
        except ValueError:  # no pairs (or a domain run without names): every side that holds the adapters
            return holding
        chosen = [side for side in holding if set(names) & set(routed[side])]
        return chosen or holding

    def add_fusions(self, names: list[str], over: list[str], sides: list[str]) -> bool:
        """AdapterFusion layers for ``names`` over the adapters ``over`` in every adapter layer of ``sides``."""
        if not names and not over:
            return False
        if self.args.adapter_placement != "output":
            raise ValueError(f"AdapterFusion runs on the layer output (--adapter-placement output), not with "
                             f"--adapter-placement {self.args.adapter_placement}")
        if not names or len(over) < 2:
            raise ValueError("AdapterFusion needs --adapter-fusion-keys (the fused route keys) and at least two "
                             "adapters in --adapter-fusion-over")
        for side in sides:
            if side not in ("encoder", "decoder"):
                raise ValueError(f"--adapter-fusion-sides: {side!r} is not encoder or decoder")
            missing = sorted(set(over) - set(self.adapter_keys(side)))
            if missing or not self.adapter_banks(side):
                raise ValueError(f"--adapter-fusion-over: the {side} has no adapters {', '.join(missing) or 'at all'}")
            for _, bank in self.adapter_banks(side):
                for name in names:
                    bank.add_fusion(name, over)
        return bool(sides)

    def fusion_layers(self, side: str) -> list[tuple[int, str, AdapterFusionLayer]]:
        """(layer index, fusion name, fusion layer) of ``side``, for inspecting the fusion weights."""
        return [(i, name, layer) for i, bank in self.adapter_banks(side) for name, layer in bank.fusions.items()]

    def unfreeze_embeddings(self) -> None:
        """``--adapter-train-embeddings``: the token embeddings and output projection train with the adapters."""
        for module in (self.encoder.embed_tokens, self.decoder.embed_tokens, self.decoder.output_projection):
            if module is not None:
                module.weight.requires_grad_(True)

    def make_embeddings_require_grad(self) -> None:
        """For ``--checkpoint-activations`` over a frozen base: mark the embeddings' output as requiring grad.

        fairseq checkpoints a layer with a re-entrant autograd function, whose
        output needs grad only if an input does; with the base frozen no input
        does, so the adapters inside would get no gradient (and the loss none at
        all).  The usual remedy (transformers' ``enable_input_require_grads``):
        a forward hook on the token embeddings.
        """
        def require_grad(module, inputs, output):
            if torch.is_grad_enabled() and not output.requires_grad:
                output.requires_grad_(True)

        for embed in {id(e): e for e in (self.encoder.embed_tokens, self.decoder.embed_tokens)}.values():
            embed.register_forward_hook(require_grad)

    def adapter_drop(self) -> AdapterDropConfig | None:
        """AdapterDrop's policy (``adapter_core.drop``) as the model options ask for it; None without AdapterDrop.

        Read from the options on each call, so that a change to them (bench D2) takes effect at once.
        """
        return adapter_drop_config(self.args)

    def check_adapter_drop(self) -> None:
        """AdapterDrop in training must leave at least one layer with adapters, or there is nothing to train."""
        policy = self.adapter_drop()
        if policy is not None:
            top = max([i for side in ("encoder", "decoder") for i, _ in self.adapter_banks(side)], default=-1)
            policy.check_fits(top, "--adapter-drop-layers")

    def set_inference_dropped_layers(self, count: int) -> None:
        """AdapterDrop outside training: run the lowest ``count`` layers of both sides without adapters."""
        if count < 0:
            raise ValueError(f"AdapterDrop: the number of dropped layers must be >= 0, got {count}")
        self.encoder.inference_dropped_layers = self.decoder.inference_dropped_layers = count

    def training_dropped_layers(self, update_num: int) -> int:
        """AdapterDrop in training: the fixed n (specialised), or n drawn for this update (robust).

        The robust draw depends only on the seed and the update number (``adapter_core.drop``), so a
        resumed run draws what the interrupted one would have.
        """
        policy = self.adapter_drop()
        return policy.training_dropped(update_num) if policy is not None else 0

    def set_skipped_layers(self, skipped: dict[str, set[int]]) -> None:
        """Leave out the adapters of the given layer indices per side (layer ablation, pruning)."""
        for side in ("encoder", "decoder"):
            stack = self.encoder if side == "encoder" else self.decoder
            for i, layer in enumerate(all_layers(stack)):
                if hasattr(layer, "adapter_skipped"):
                    layer.adapter_skipped = i in skipped.get(side, ())

    # -- what the task and the export command need ---------------------------
    def adapter_banks(self, side: str):
        """(layer index, AdapterBank) for each layer of ``side`` ("encoder"/"decoder") that has adapters: the bank
        of its last site (the layer output; Houlsby's feed-forward one).  All sites of a model hold the same keys;
        ``adapter_site_banks`` gives every site."""
        return [(i, banks[-1][1]) for i, banks in self._layer_site_banks(side)]

    def adapter_site_banks(self, side: str):
        """(layer index, Site, AdapterBank) for every adapter site of every layer of ``side``."""
        return [(i, site, bank) for i, banks in self._layer_site_banks(side) for site, bank in banks]

    def _layer_site_banks(self, side: str):
        stack = self.encoder if side == "encoder" else self.decoder
        return [(i, layer.site_banks()) for i, layer in enumerate(all_layers(stack)) if hasattr(layer, "site_banks")]

    def adapter_keys(self, side: str) -> list[str]:
        """The keys every adapter layer of ``side`` has (sorted)."""
        banks = self.adapter_banks(side)
        if not banks:
            return []
        keys = set(banks[0][1].names) | set(banks[0][1].fusions)
        for _, bank in banks[1:]:
            keys &= set(bank.names) | set(bank.fusions)
        return sorted(keys)


def adapter_parameter_counts(model) -> dict[str, int]:
    """Parameters per adapter key, summed over all layers and both sides."""
    counts: dict[str, int] = defaultdict(int)
    for side in ("encoder", "decoder"):
        for _, _, bank in model.adapter_site_banks(side):
            for key, module in bank.adapters.items():
                counts[key] += sum(p.numel() for p in module.parameters())
    return dict(counts)
