"""``adapter_translation``: ``translation_multi_simple_epoch`` that routes every sample to its adapters.

Bapna & Firat (2019) pair adapters, Philip et al. (2020) language adapters,
or one adapter per domain.  Language ids are always on (``--enable-lang-ids``
is implied), so each sample of a mixed batch carries its source and target
language.  The task builds the model's route table from its language
dictionary and adds each sample's ``tgt_lang_id`` to ``net_input`` (fairseq
keeps it beside), so the model routes every sample by its own ids (see
``nmt.routing``).
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict

import torch
from fairseq.data.multilingual.multilingual_data_manager import MultilingualDatasetManager
from fairseq.data.multilingual.multilingual_utils import get_lang_tok
from fairseq.data.multilingual.sampled_multi_dataset import CollateFormat, SampledMultiDataset
from fairseq.dataclass.utils import gen_parser_from_dataclass
from fairseq.models import ARCH_MODEL_REGISTRY
from fairseq.models.bart import BARTModel
from fairseq.models.transformer import TransformerModel
from fairseq.tasks import register_task
from fairseq.tasks.translation_multi_simple_epoch import TranslationMultiSimpleEpochTask

from ..adapter_files import build_base_with_adapter_layers
from ..config import AdapterTaskConfig, parse_skip_layers, split_list
from ..models import AdapterTransformerModel

logger = logging.getLogger(__name__)

# Models whose checkpoints hold exactly the plain Transformer's keys, so that a checkpoint of theirs loads into
# adapter_transformer: fairseq's transformer_* architectures (M2M-100) and bart/mbart_* (mBART-50 checkpoints
# trained with --arch mbart_large; BART adds only classification heads, which translation models do not have).
PLAIN_TRANSFORMER_MODELS = (TransformerModel, BARTModel)


def is_plain_transformer(arch: str | None) -> bool:
    """Whether a checkpoint of ``arch`` holds the plain Transformer's keys (it can carry adapter directories)."""
    return ARCH_MODEL_REGISTRY.get(arch) in PLAIN_TRANSFORMER_MODELS


def unwrap_model(model) -> AdapterTransformerModel:
    """The ``AdapterTransformerModel`` inside fairseq's DDP/FSDP wrappers, or a clear error."""
    inner = model
    while not isinstance(inner, AdapterTransformerModel) and hasattr(inner, "module"):
        inner = inner.module
    if not isinstance(inner, AdapterTransformerModel):
        raise TypeError(f"--task adapter_translation needs an adapter_transformer model (--arch adapter_transformer, "
                        f"adapter_m2m100_418m, ...), got {type(model).__name__}")
    return inner


class PerSampleLangIdDataManager(MultilingualDatasetManager):
    """fairseq's data manager, but every sample keeps its own language ids in a mixed batch.

    With ``--enable-lang-ids``, fairseq's default "shared collater" (and the
    ``ConcatDataset`` used for validation and test sets) collates a mixed
    batch with the first language pair's collater, so every sample gets that
    pair's ``src_lang_id``/``tgt_lang_id``.  Here each language pair collates
    its own samples and the batches are merged, as fairseq already does with
    ``--lang-tok-replacing-bos-eos``.
    """

    def _shared_collater(self):
        return False

    def load_into_concat_dataset(self, split, datasets, data_param_list):
        return SampledMultiDataset(OrderedDict(datasets), sampling_ratios=None, eval_key=None,
                                   collate_format=CollateFormat.single, virtual_size=None, split=split)


@register_task("adapter_translation")
class AdapterTranslationTask(TranslationMultiSimpleEpochTask):
    """Multilingual translation with per-sample adapter routing (Bapna & Firat 2019; Philip et al. 2020)."""

    @staticmethod
    def add_args(parser):
        TranslationMultiSimpleEpochTask.add_args(parser)
        gen_parser_from_dataclass(parser, AdapterTaskConfig())

    def __init__(self, args, langs, dicts, training):
        args.enable_lang_ids = True  # every sample carries its languages; routing needs them
        if not training:
            for flag, lang in (("--source-lang", args.source_lang), ("--target-lang", args.target_lang)):
                if lang is None:
                    raise ValueError(f"{flag} is required for generation with --task adapter_translation")
                if lang not in langs:
                    raise ValueError(f"{flag} {lang!r} is not one of the model's languages: {', '.join(langs)}")
        self._check_distributed(args)
        self._check_lang_pairs(args.lang_pairs)
        super().__init__(args, langs, dicts, training)
        self.data_manager = PerSampleLangIdDataManager(args, self.lang_pairs, langs, dicts, self.sampling_method)

    @staticmethod
    def _check_lang_pairs(lang_pairs) -> None:
        """--lang-pairs names each direction once, as SRC-TGT with two different languages."""
        pairs = lang_pairs.split(",") if isinstance(lang_pairs, str) else list(lang_pairs or [])
        seen = set()
        for pair in (p.strip() for p in pairs if p.strip()):
            src, _, tgt = pair.partition("-")
            if not src or not tgt or "-" in tgt:
                raise ValueError(f"--lang-pairs: {pair!r} is not SRC-TGT (e.g. en-de)")
            if src == tgt:
                raise ValueError(f"--lang-pairs: {pair!r} translates a language into itself; list directions "
                                 "between two different languages")
            if pair in seen:
                raise ValueError(f"--lang-pairs: {pair!r} is listed twice; list each direction once")
            seen.add(pair)

    @staticmethod
    def _check_distributed(args) -> None:
        """Batches that use only some adapters leave the others without gradients; say how DDP copes."""
        world = getattr(args, "distributed_world_size", 1) or 1
        backend = getattr(args, "ddp_backend", "pytorch_ddp")
        if world > 1 and backend in ("c10d", "pytorch_ddp") and not getattr(args, "find_unused_parameters", False):
            raise ValueError(
                "distributed adapter training: a batch may touch only some adapters, which --ddp-backend "
                f"{backend} cannot handle without --find-unused-parameters; pass --find-unused-parameters, "
                "or use --ddp-backend legacy_ddp (it all-reduces zero gradients for unused adapters)")

    def build_model(self, args, from_checkpoint=False):
        arch = getattr(args, "arch", None)
        check_distinct_dirs(split_list(self.args.adapter_dirs))
        if from_checkpoint and is_plain_transformer(arch):
            # A plain Transformer (or BART) checkpoint, e.g. the base of --adapter-dirs: same keys, plus adapter banks.
            logger.info("building adapter_transformer for the %s checkpoint", arch)
            build_base_with_adapter_layers(args, split_list(self.args.adapter_dirs))
        model = unwrap_model(super().build_model(args, from_checkpoint))
        dirs = split_list(self.args.adapter_dirs)
        if dirs and self.training:
            if model.args.adapters_by != "lang+pair":
                raise ValueError("--adapter-dirs is for generation (fairseq-generate/interactive), and in training for "
                                 "the language adapters of --adapters-by lang+pair; to keep training an exported "
                                 "adapter, train from the checkpoint it was exported from")
            if os.path.exists(os.path.join(self.args.save_dir, "checkpoint_last.pt")):
                dirs = []  # resuming: the run's own checkpoint holds the language adapters now
            else:
                check_languages_covered(model, dirs, self.lang_pairs, self.args.adapter_lang_identity)
            check_language_adapter_dirs(model, dirs)
            model.adapter_dirs_only_existing = True  # the languages of this run's pairs, on the sides that use them
        elif self.training and model.args.adapters_by == "lang+pair" and \
                not os.path.exists(os.path.join(self.args.save_dir, "checkpoint_last.pt")):
            check_languages_covered(model, [], self.lang_pairs, self.args.adapter_lang_identity)
        model.adapter_dirs_to_load = dirs
        model.adapter_force = bool(self.args.adapter_force)
        layers = {"encoder": len(model.encoder.layers), "decoder": len(model.decoder.layers)}
        skipped = parse_skip_layers(self.args.adapter_skip_layers, layers)
        model.set_skipped_layers(skipped)
        if self.args.adapter_drop_inference >= 0:
            model.set_inference_dropped_layers(self.args.adapter_drop_inference)
        if any(skipped.values()):
            logger.info("adapters left out (--adapter-skip-layers): encoder layers %s, decoder layers %s",
                        sorted(skipped["encoder"]) or "none", sorted(skipped["decoder"]) or "none")
        lang_dict = self.data_manager.lang_dict
        model.set_routing([lang_dict[i] for i in range(len(lang_dict))], self.args.adapter_domain,
                          self.args.missing_adapter)
        return model

    # -- routing -------------------------------------------------------------
    def add_lang_ids(self, sample):
        """Put each sample's ``tgt_lang_id`` into ``net_input`` beside its ``src_lang_id``: the model routes by both.

        fairseq-interactive builds batches without language ids; they come from ``-s``/``-t`` then.
        """
        net_input = sample["net_input"]
        if "tgt_lang_id" in net_input:
            return sample
        src_ids, tgt_ids = net_input.get("src_lang_id"), sample.get("tgt_lang_id")
        if src_ids is None or tgt_ids is None:
            tokens, lang_dict = net_input["src_tokens"], self.data_manager.lang_dict
            ids = [lang_dict.index(self.args.source_lang), lang_dict.index(self.args.target_lang)]
            src_ids, tgt_ids = torch.tensor(ids, device=tokens.device).view(2, 1, 1).expand(2, tokens.size(0), 1)
        net_input["src_lang_id"], net_input["tgt_lang_id"] = src_ids, tgt_ids
        return sample

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        inner = unwrap_model(model)
        inner.set_training_dropped_layers(inner.training_dropped_layers(update_num))
        return super().train_step(self.add_lang_ids(sample), model, criterion, optimizer, update_num, ignore_grad)

    def valid_step(self, sample, model, criterion):
        return super().valid_step(self.add_lang_ids(sample), model, criterion)

    def inference_step(self, generator, models, sample, prefix_tokens=None, constraints=None):
        tgt_ids = sample.get("tgt_lang_id")
        _, tgt_langtok_spec = self.args.langtoks["main"]
        if (prefix_tokens is None and tgt_ids is not None and tgt_langtok_spec
                and not self.args.lang_tok_replacing_bos_eos):
            # A mixed batch: each sentence starts with its own target-language token.
            prefix_tokens = self._target_langtoks(tgt_ids.reshape(-1), tgt_langtok_spec).unsqueeze(1)
        return super().inference_step(generator, models, self.add_lang_ids(sample), prefix_tokens=prefix_tokens,
                                      constraints=constraints)

    def _target_langtoks(self, tgt_ids: torch.Tensor, spec) -> torch.Tensor:
        """Each sample's target-language token, from the shared target dictionary (any language of the model)."""
        lang_dict, dictionary = self.data_manager.lang_dict, self.target_dictionary
        table = {}
        for i in torch.unique(tgt_ids).tolist():
            langtok = get_lang_tok(lang=lang_dict[int(i)], lang_tok_style=self.args.lang_tok_style, spec=spec)
            table[int(i)] = self.data_manager.get_langtok_index(langtok, dictionary)
        return torch.tensor([table[int(i)] for i in tgt_ids.tolist()], dtype=torch.long, device=tgt_ids.device)


def check_distinct_dirs(directories) -> None:
    """Each --adapter-dirs folder once: a folder named twice ended in fairseq's "ensure that the architectures
    match"."""
    seen = {}
    for directory in directories:
        real = os.path.realpath(directory)
        if real in seen:
            raise ValueError(f"--adapter-dirs names {directory} twice (also as {seen[real]}); name each folder once")
        seen[real] = directory


def check_languages_covered(model, directories, lang_pairs, identity: bool) -> None:
    """lang+pair with frozen language adapters: every language of the run's pairs needs its adapter in
    --adapter-dirs; one left out would stay the identity, frozen, under pair adapters that train on top.
    Refused in one line naming the languages, unless --adapter-lang-identity asks for exactly that."""
    from adapter_core import read_adapter_config

    if model.args.adapters_by != "lang+pair" or model.args.adapter_lang_training != "frozen" or identity:
        return
    pairs = lang_pairs.split(",") if isinstance(lang_pairs, str) else list(lang_pairs or [])
    used = sorted({lang for pair in pairs if pair.strip() for lang in pair.strip().split("-")})
    given = set()
    for directory in directories:
        name = read_adapter_config(directory).get("name")
        given.add(name if isinstance(name, str) and name else os.path.basename(os.path.normpath(directory)))
    missing = [lang for lang in used if lang not in given]
    if missing:
        raise ValueError(f"--adapters-by lang+pair: --adapter-dirs has no language adapter for {', '.join(missing)} "
                         f"(used by --lang-pairs); they would stay the identity, frozen, while the pair adapters "
                         f"train; add a lang run's adapters (nmt-export-adapters) to --adapter-dirs, or pass "
                         f"--adapter-lang-identity to train over identity language adapters")


def check_language_adapter_dirs(model, directories) -> None:
    """With lang+pair training, each --adapter-dirs language adapter must have the config the model builds for it
    (else the saved checkpoint could not be rebuilt from its options at generation): a one-line error naming
    --adapter-lang-dim otherwise."""
    from adapter_core import AdapterConfig, read_adapter_config

    from ..config import language_adapter_configs

    for directory in directories:
        document = read_adapter_config(directory)
        saved = AdapterConfig.from_dict(document["config"])
        key = document.get("name") or os.path.basename(os.path.normpath(directory))
        built = language_adapter_configs(model.args, saved.hidden_dim, [key])[key]
        if saved.resolved_bottleneck_dim != built.resolved_bottleneck_dim:
            raise ValueError(f"--adapter-dirs {directory}: language adapter {key!r} has bottleneck "
                             f"{saved.resolved_bottleneck_dim}, but this run builds language adapters of "
                             f"{built.resolved_bottleneck_dim}; pass --adapter-lang-dim "
                             f"{saved.resolved_bottleneck_dim} (the lang run's --adapter-dim)")
