"""The ``xling`` flags and subcommands for the methods besides MAD-X: Houlsby's placement, Compacter(++), LoRA,
prefix tuning, AdapterDrop, AdapterFusion, full fine-tuning, layer ablation, representation drift.

    xling train-task ... --adapter-placement houlsby --train-layer-norms
    xling train-task ... --adapter-kind compacter++ --adapter-phm-dim 4 --adapter-drop-mode specialised --adapter-drop-layers 2
    xling train-task ... --adapter-kind lora --adapter-dim 12       (or --adapter-kind prefix_tuning --adapter-dim 24)
    xling eval ... --adapter-drop-inference 2
    xling train-fusion --task ner --model DIR --task-adapters A/adapter B/adapter --train en.panx --output-dir FUSION
    xling train-full --task ner --model DIR --train en.panx --output-dir FULL
    xling ablate --model DIR --task-adapter TASK/adapter --lang-adapter SW/adapter --lang sw --data sw.panx --output-dir ABL
    xling drift --model DIR --task-adapter TASK/adapter --lang-adapter EN/adapter --full-model FULL/model \\
        --text en.txt --output-dir DRIFT

``cli.py`` adds these flags and subcommands to its parser and hands the
subcommands below to ``run_method_command``; bad values end in the same one-line
``xling: error: ...`` (a ValueError raised here).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from adapter_core import (ADAPTER_DROP_MODES, ATTENTION_KINDS, COMPACTER_KINDS, FLAG_HELP, AdapterConfig,
                          AdapterDropConfig, attention_config, compacter_config, drop_config, houlsby_2019,
                          madx_language, madx_task, resolve_kind_placement)
from adapter_core.flags import check_attention_flags

from .data import add_dataset_flags, data_source
from .kinds import ADAPTER_KINDS, ADAPTER_PLACEMENTS, K_ADAPTER_KIND, XLING_SITES

#: Reduction factors when --adapter-reduction-factor is not given (MAD-X: rf 2 language, rf 16 task adapters).
DEFAULT_REDUCTION = {"language": 2.0, "task": 16.0}
#: The --task choices (the names of xling.tasks.TASKS, listed here so that --help need not import transformers).
TASK_CHOICES = ("ner", "qa", "copa", "classification", "pos")
#: Subcommands defined here.
COMMANDS = ("train-fusion", "train-full", "ablate", "drift")


def _adapter_kind(value: str) -> str:
    if value not in (*ADAPTER_KINDS, K_ADAPTER_KIND):
        raise argparse.ArgumentTypeError(f"unknown adapter kind {value!r}; choose from "
                                         f"{', '.join((*ADAPTER_KINDS, K_ADAPTER_KIND))}")
    return value


def add_adapter_flags(parser: argparse.ArgumentParser, role: str) -> None:
    """The shared --adapter-* flags (``adapter_core.flags``) of train-lang / train-task, and xling's size flag."""
    parser.add_argument("--adapter-kind", type=_adapter_kind, default="bottleneck",
                        help=FLAG_HELP["kind"] + ("; train-task also k-adapter (Wang et al. 2021: adapter layers "
                             "beside the frozen encoder, reading chosen layers of it; token-level tasks)"
                             if role == "task" else ""))
    parser.add_argument("--adapter-placement", choices=ADAPTER_PLACEMENTS,
                        help=FLAG_HELP["placement"] + "; xling's one-per-layer place is pfeiffer")
    parser.add_argument("--adapter-reduction-factor", type=float,
                        help=f"hidden size / bottleneck width (default {DEFAULT_REDUCTION[role]:g}, as MAD-X; not for "
                             "lora and prefix_tuning)")
    parser.add_argument("--adapter-dim", type=int, help=FLAG_HELP["dim"] + "; instead of --adapter-reduction-factor "
                        "(lora: default 8; prefix_tuning: default 30, as AdapterHub)")
    parser.add_argument("--adapter-phm-dim", type=int, help=FLAG_HELP["phm_dim"])
    parser.add_argument("--adapter-lora-alpha", type=float, help=FLAG_HELP["lora_alpha"])
    parser.add_argument("--adapter-prefix-mlp-dim", type=int, help=FLAG_HELP["prefix_mlp_dim"])
    parser.add_argument("--adapter-drop-mode", choices=ADAPTER_DROP_MODES, help=FLAG_HELP["drop_mode"])
    parser.add_argument("--adapter-drop-layers", type=int, help=FLAG_HELP["drop_layers"])
    if role == "task":
        parser.add_argument("--k-adapter-layers", type=int, nargs="+",
                            help="k-adapter: the encoder hidden states its adapter layers read (0: embeddings, i: "
                                 "output of layer i; default: the paper's 0, 11, 22 of 24 scaled to the encoder)")
        parser.add_argument("--k-adapter-dim", type=int,
                            help="k-adapter: width inside each adapter layer, a multiple of its 12 heads, FFN 4x "
                                 "(default: the paper's 768 x hidden size / 1024, rounded to 12 heads)")


def adapter_config_from_args(args, role: str) -> AdapterConfig | None:
    """The adapter config the flags ask for; None for the MAD-X default bottleneck."""
    kind, factor, phm_dim = args.adapter_kind, args.adapter_reduction_factor, args.adapter_phm_dim
    if kind == K_ADAPTER_KIND:  # train-task trains it with xling.k_adapter_train before asking for a config
        raise ValueError("--adapter-kind k-adapter is a task adapter beside the encoder: train it with train-task")
    if getattr(args, "k_adapter_layers", None) is not None or getattr(args, "k_adapter_dim", None) is not None:
        raise ValueError("--k-adapter-layers and --k-adapter-dim are for --adapter-kind k-adapter")
    placement = resolve_kind_placement(kind, getattr(args, "adapter_placement", None), XLING_SITES)
    dim, alpha, mlp = (getattr(args, f, None) for f in ("adapter_dim", "adapter_lora_alpha", "adapter_prefix_mlp_dim"))
    if factor is not None and factor <= 0:
        raise ValueError(f"--adapter-reduction-factor must be positive, got {factor:g}")
    if factor is not None and (dim is not None or kind in ATTENTION_KINDS):
        raise ValueError("--adapter-reduction-factor: give the width once, with --adapter-dim (the only size of "
                         "lora and prefix_tuning) or with the reduction factor")
    if dim is not None and dim <= 0:
        raise ValueError(f"--adapter-dim must be positive, got {dim}")
    if phm_dim is not None and kind not in COMPACTER_KINDS:
        raise ValueError("--adapter-phm-dim applies to --adapter-kind compacter and compacter++ only")
    check_attention_flags(kind, alpha, mlp)
    if kind == "bottleneck" and factor is None and dim is None and placement == "pfeiffer":
        return None
    from transformers import AutoConfig

    from .train import from_model_dir

    hidden = from_model_dir(AutoConfig, args.model).hidden_size
    if kind in ATTENTION_KINDS:
        return attention_config(kind, hidden, placement, dim=dim, lora_alpha=alpha, prefix_mlp_dim=mlp)
    factor = factor or DEFAULT_REDUCTION[role]
    width = {} if dim is None else {"bottleneck_dim": dim, "reduction_factor": None}
    if kind == "bottleneck" and placement == "houlsby":  # MAD-X's sizes, Houlsby's sites and init
        return houlsby_2019(hidden).replace(bottleneck_dim=None, reduction_factor=factor, **width)
    if kind == "bottleneck":
        return (madx_language(hidden, factor) if role == "language" else madx_task(hidden, factor)).replace(**width)
    return compacter_config(kind, hidden, placement, bottleneck_dim=dim, reduction_factor=factor, phm_dim=phm_dim)


def drop_config_from_args(args) -> AdapterDropConfig | None:
    """The AdapterDrop config the flags ask for (``adapter_core.flags.drop_config``); None without a mode."""
    return drop_config(args.adapter_drop_mode, args.adapter_drop_layers, args.seed)


# -- subcommands ----------------------------------------------------------------------------------
def add_method_commands(sub, training_flags) -> None:
    """Add train-fusion, train-full, ablate and drift to the ``xling`` subparsers."""
    fusion = sub.add_parser("train-fusion", help="AdapterFusion: fuse trained task adapters for a target task")
    fusion.add_argument("--task", required=True, choices=TASK_CHOICES, help="the target task")
    fusion.add_argument("--model", required=True, help="local model directory")
    fusion.add_argument("--task-adapters", required=True, nargs="+", help="two or more task adapter dirs (train-task's OUT/adapter)")
    fusion.add_argument("--lang-adapter", help="language adapter stacked below the fusion (Stack(lang, Fuse(...)))")
    fusion.add_argument("--train", help="training file of the target task (or --dataset NAME)")
    fusion.add_argument("--train-labels", help="SIQA: the separate labels file")
    fusion.add_argument("--force", action="store_true", help="load adapters made for another base")
    fusion.add_argument("--value-regularization", type=float, default=0.01, metavar="LAMBDA",
                        help="λ of the loss term λ·Σ||I − V||² that keeps each fusion layer's value matrix near the "
                             "identity (Pfeiffer et al. 2021, AdapterHub's 0.01 by default; 0: none)")
    add_dataset_flags(fusion, split="train")
    training_flags(fusion, adapters=False)

    full = sub.add_parser("train-full", help="full fine-tuning of every weight (the baseline for xling drift)")
    full.add_argument("--task", required=True, choices=TASK_CHOICES, help="the task")
    full.add_argument("--model", required=True, help="local model directory")
    full.add_argument("--train", help="training file (or --dataset NAME)")
    full.add_argument("--train-labels", help="SIQA: the separate labels file")
    full.add_argument("--dev", help="dev file, scored after training into dev_results.json")
    full.add_argument("--dev-labels", help="SIQA: labels file of the dev set")
    add_dataset_flags(full, split="train")
    training_flags(full, adapters=False)

    ablate = sub.add_parser("ablate", help="layer ablation: remove the adapters of each layer span, heatmap of the change")
    _inference_flags(ablate)
    ablate.add_argument("--lang", required=True, help="language code of --data (recorded)")
    ablate.add_argument("--data", required=True, help="evaluation file")
    ablate.add_argument("--labels", help="SIQA: the separate labels file")
    ablate.add_argument("--per-layer", action="store_true", help="remove one layer at a time (default: every span first..last)")
    ablate.add_argument("--max-span", type=int, help="longest span of layers removed at once (default: all)")
    ablate.add_argument("--batch-size", type=int, default=32, help="examples per batch")
    ablate.add_argument("--output-dir", required=True, help="where ablation.json and ablation.png go")

    drift = sub.add_parser("drift", help="per-layer similarity (CKA, RSA) of adapter-tuned and fully fine-tuned "
                                         "models to the base, on the same inputs")
    drift.add_argument("--model", required=True, help="the base model directory")
    drift.add_argument("--task-adapter", help="adapter-tuned model: task adapter dir (with --lang-adapter)")
    drift.add_argument("--lang-adapter", help="adapter-tuned model: the language adapter below the task adapter")
    drift.add_argument("--full-model", nargs="+", help="fully fine-tuned model dirs (xling train-full's OUT/model); "
                       "one is named 'full', several 'full (<OUT>)'")
    drift.add_argument("--text", required=True, nargs="+", help="input text files, one sentence per line")
    drift.add_argument("--max-sentences", type=int, default=200, help="first N sentences used (RSA is quadratic in tokens)")
    drift.add_argument("--max-length", type=int, default=128, help="longest input in tokens")
    drift.add_argument("--measures", nargs="+", default=["cka", "rsa"], choices=["cka", "rsa"],
                       help="similarity measures (linear CKA, RSA)")
    drift.add_argument("--force", action="store_true", help="load adapters made for another base")
    drift.add_argument("--output-dir", required=True, help="where drift.json and drift_<measure>.png go")


def _inference_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="local model directory")
    parser.add_argument("--task-adapter", required=True, help="directory written by train-task (OUT/adapter)")
    parser.add_argument("--lang-adapter", required=True, help="language adapter dir stacked below the task adapter")
    parser.add_argument("--force", action="store_true", help="load adapters made for another base")


def run_method_command(args, options) -> None:
    """Run one of ``COMMANDS``; ``options`` builds the TrainOptions from the training flags."""
    {"train-fusion": _train_fusion, "train-full": _train_full, "ablate": _ablate, "drift": _drift}[args.command](args, options)


def _train_fusion(args, options) -> None:
    from .fusion import train_fusion

    if len(args.task_adapters) < 2:
        raise ValueError(f"--task-adapters: AdapterFusion needs two or more task adapters, got {len(args.task_adapters)}")
    out = train_fusion(args.model, args.task, args.task_adapters, data_source(args, "train"), options(args),
                       language_adapter=args.lang_adapter, labels_file=args.train_labels, force=args.force,
                       value_regularization=args.value_regularization)
    print(f"AdapterFusion written to {out}; attention weights: {out / 'fusion_weights.json'}, {out / 'fusion_weights.png'}")


def _train_full(args, options) -> None:
    from adapter_core import atomic_write_json

    from .tasks import TASKS
    from .train import is_main_process, train_full_model

    if args.dev:  # a bad dev file fails before training, not after it
        TASKS[args.task].read(args.dev, args.dev_labels)
    out, setup = train_full_model(args.model, args.task, data_source(args, "train"), options(args), args.train_labels)
    if not is_main_process():
        return
    print(f"fully fine-tuned model written to {out}")
    if args.dev:
        module = setup.module
        setup.model.eval()
        scores = module.evaluate(setup.model, setup.tokenizer, module.read(args.dev, args.dev_labels), setup.labels)
        atomic_write_json(out.parent / "dev_results.json", {"task": args.task, "mode": "full", "seed": args.seed, **scores})
        print(f"dev {scores['main_metric']}: {scores[scores['main_metric']]:.2f} -> {out.parent / 'dev_results.json'}")


def _refuse_k_adapter(info: dict, command: str) -> None:
    if info.get("adapter_kind") == K_ADAPTER_KIND:
        raise ValueError(f"{command} works on adapters inside the encoder's layers; a K-adapter sits beside the "
                         "encoder (xling.k_adapter)")


def _ablate(args, options) -> None:
    from .ablation import layer_ablation, write_ablation_report
    from .inference import evaluate_loaded, inference_dropped_layers, load_task_model

    if args.max_span is not None and args.max_span < 1:
        raise ValueError(f"--max-span must be >= 1, got {args.max_span}")
    loaded = load_task_model(args.model, args.task_adapter, args.lang_adapter, force=args.force)
    _refuse_k_adapter(loaded.info, "ablate")
    examples = loaded.module.read(args.data, args.labels)
    dropped = inference_dropped_layers(loaded)  # a specialised AdapterDrop adapter is ablated as it is evaluated
    metric = None

    def score() -> float:
        nonlocal metric
        scores = evaluate_loaded(loaded, args.data, args.lang, batch_size=args.batch_size, examples=examples)
        metric = scores["main_metric"]
        return scores[metric]

    loaded.host.set_skipped_layers(range(dropped))
    result = layer_ablation(loaded.host, score, spans=not args.per_layer, metric="score", max_span=args.max_span)
    result.metric = metric
    png = write_ablation_report(result, args.output_dir)
    print(f"{args.lang} {metric} with every adapter: {result.baseline:.2f}; ablation -> {png.parent / 'ablation.json'}, {png}")


def _drift(args, options) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    from .data import read_text
    from .drift import collect_hidden_states, drift_by_measure, encode, write_drift_reports
    from .train import from_model_dir

    if bool(args.task_adapter) != bool(args.lang_adapter):
        raise ValueError("--task-adapter and --lang-adapter go together (the adapter-tuned model is Stack(lang, task))")
    if not args.task_adapter and not args.full_model:
        raise ValueError("nothing to compare: give --task-adapter/--lang-adapter, --full-model, or both")
    if args.max_sentences < 2:
        raise ValueError(f"--max-sentences must be >= 2, got {args.max_sentences}")
    texts = [line for path in args.text for line in read_text(path)][:args.max_sentences]
    tokenizer = from_model_dir(AutoTokenizer, args.model)
    batches = encode(tokenizer, texts, max_length=args.max_length)
    torch.manual_seed(0)  # heads that the base directory lacks are initialised, though unused
    base_states = collect_hidden_states(from_model_dir(AutoModel, args.model), batches)
    tuned = {}
    if args.task_adapter:
        from .inference import load_task_model

        loaded = load_task_model(args.model, args.task_adapter, args.lang_adapter, force=args.force)
        _refuse_k_adapter(loaded.info, "drift")
        tuned["adapter"] = collect_hidden_states(loaded.model, batches, setup=loaded.setup)
    for directory in args.full_model or []:
        name = "full" if len(args.full_model) == 1 else f"full ({Path(directory).resolve().parent.name})"
        if name in tuned:
            raise ValueError(f"--full-model: two models would both be named {name!r}; put them in differently named dirs")
        tuned[name] = collect_hidden_states(from_model_dir(AutoModel, directory), batches)
    reports = drift_by_measure(base_states, tuned, args.measures)
    inputs = {"base": str(args.model), "task_adapter": args.task_adapter, "lang_adapter": args.lang_adapter,
              "full_model": args.full_model, "text": [str(p) for p in args.text], "sentences": len(texts),
              "tokens": int(base_states[0].shape[0])}
    write_drift_reports(reports, args.output_dir, inputs)
    for measure, report in reports.items():
        means = ", ".join(f"{name} {value:.3f}" for name, value in report["mean"].items())
        print(f"mean {measure.upper()} with the base: {means}")
    print(f"drift -> {Path(args.output_dir) / 'drift.json'}")
