"""The ``xling`` command: train-lang, train-task, eval, report, baseline, export (and, in ``cli_methods``,
train-fusion, train-full, ablate, drift; in ``seq2seq_cli``, train-translation and translate).

    xling train-lang --model DIR --lang sw --text sw.txt --output-dir OUT
    xling train-task --task ner --model DIR --lang-adapter OUT/adapter --train en.panx --output-dir TASK
    xling eval --model DIR --task-adapter TASK/adapter --lang-adapter SW/adapter --lang sw --data sw.panx --output sw.json
    xling eval ... --lang de --dataset wikiann --dataset-config de --output de.json   (HF data set, from the cache)
    xling report results/*.json --output-dir report --source-language en
    xling export --format adapterhub --adapter TASK/adapter --output-dir ah/ner
    xling baseline --task classification --train train.en.jsonl --data test.de.jsonl --lang de --output de-majority.json

Methods besides MAD-X (flags and subcommands in ``cli_methods``): ``--adapter-placement
houlsby`` (Houlsby et al. 2019; with ``--train-layer-norms`` for train-task),
``--adapter-kind compacter|compacter++`` and AdapterDrop (``--adapter-drop-mode``,
``--adapter-drop-layers``) for train-lang/train-task, ``--adapter-drop-inference`` for eval;
``--adapter-kind k-adapter`` for train-task (Wang et al. 2021, ``xling.k_adapter``);
``train-fusion``, ``train-full``, ``ablate`` and ``drift``.

Bad input (a malformed data file, a corrupt or mismatched adapter, a model
directory that cannot be loaded) ends with one line ``xling: error: ...``
naming the file and line or key, and exit status 1; set XLING_TRACEBACK=1 to
see the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from adapter_core import AdapterFormatError, FingerprintMismatchError
from adapter_core.io import describe_os_error

from .cli_methods import COMMANDS as METHOD_COMMANDS
from .cli_methods import TASK_CHOICES
from .kinds import K_ADAPTER_KIND
from .cli_methods import (add_adapter_flags, add_method_commands, adapter_config_from_args, drop_config_from_args,
                          run_method_command)
from . import encoder_import, lang_mlm_eval, mlm_head, parser_train, seq2seq_cli, tiny_model, vocab_trim
from .data import DataError, add_dataset_flags, data_source


#: Subcommands that make an encoder usable (a real pretrained one, or a tiny one for smoke runs): each module
#: has add_command(sub) and run(args).
ENCODER_COMMANDS = {"import-e5": encoder_import, "trim-vocab": vocab_trim, "train-mlm-head": mlm_head,
                    "lang-mlm-loss": lang_mlm_eval, "tiny-model": tiny_model}
#: Subcommands with a task head of their own (add_command(sub) and run(args)): UDapter's parser.
HEAD_COMMANDS = {"train-parser": parser_train}


def _training_flags(parser: argparse.ArgumentParser, adapters: bool = True) -> None:
    parser.add_argument("--output-dir", required=True, help="output directory (adapter/ and checkpoints/ go here)")
    parser.add_argument("--learning-rate", type=float, default=1e-4, help="learning rate (MAD-X: 1e-4)")
    parser.add_argument("--batch-size", type=int, default=16, help="examples per step")
    parser.add_argument("--epochs", type=float, default=1.0, help="training epochs (ignored with --max-steps)")
    parser.add_argument("--max-steps", type=int, default=-1, help="optimizer steps (-1: use --epochs)")
    parser.add_argument("--save-steps", type=int, default=500, help="checkpoint every N steps (for resume)")
    parser.add_argument("--max-length", type=int, default=256, help="longest input in tokens")
    parser.add_argument("--seed", type=int, default=42, help="random seed")
    parser.add_argument("--cpu", action="store_true", help="train on CPU even with a GPU")
    if adapters:
        parser.add_argument("--skip-last-layer", action="store_true", help="MAD-X 2.0: no adapter in the last layer")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xling", description="MAD-X adapters for zero-shot cross-lingual transfer")
    sub = parser.add_subparsers(dest="command", required=True)

    lang = sub.add_parser("train-lang", help="train a language adapter (+ invertible adapter) with masked LM")
    lang.add_argument("--model", required=True, help="local model directory (XLM-R or mBERT with MLM head + tokenizer)")
    lang.add_argument("--lang", required=True, help="language code, also the adapter's name")
    lang.add_argument("--text", required=True, nargs="+", help="monolingual text files, one sentence per line")
    lang.add_argument("--no-invertible", action="store_true", help="train without the NICE invertible adapter")
    lang.add_argument("--heldout-text", help="held-out text of the language: its MLM loss every --eval-steps steps "
                      "goes to mlm_curve.json in the adapter folder")
    lang.add_argument("--eval-steps", type=int, default=250, help="steps between held-out scorings")
    lang.add_argument("--plateau-delta", type=float, default=0.0, help="stop once the held-out loss fell by less than "
                      "this (nats) over --plateau-window steps (0: train all steps)")
    lang.add_argument("--plateau-window", type=int, default=1000, help="see --plateau-delta")
    _training_flags(lang)
    add_adapter_flags(lang, "language")

    task = sub.add_parser("train-task", help="train a task adapter stacked on a frozen language adapter")
    task.add_argument("--task", required=True, choices=TASK_CHOICES, help="the task")
    task.add_argument("--model", required=True, help="local model directory")
    task.add_argument("--lang-adapter", required=True, help="source language adapter dir (ours or AdapterHub's), "
                      "or 'none': the task adapter on the bare encoder")
    task.add_argument("--train", help="training file (PAN-X/parquet, SQuAD JSON, COPA/SIQA jsonl), or --dataset")
    add_dataset_flags(task, split="train")
    task.add_argument("--train-labels", help="SIQA: the separate labels file")
    task.add_argument("--dev", help="dev file, scored after training into dev_results.json")
    task.add_argument("--dev-labels", help="SIQA: labels file of the dev set")
    task.add_argument("--name", help="task adapter name (default: the task)")
    task.add_argument("--force", action="store_true", help="load an adapter made for another base")
    task.add_argument("--train-layer-norms", action="store_true",
                      help="also train the encoder's LayerNorms (Houlsby et al. 2019 do), saved beside the adapter "
                           "(layer_norms.safetensors) and loaded with it by eval")
    _training_flags(task)
    add_adapter_flags(task, "task")

    ev = sub.add_parser("eval", help="zero-shot evaluation with the target language adapter swapped in")
    ev.add_argument("--model", required=True, help="local model directory")
    ev.add_argument("--task-adapter", required=True, help="directory written by train-task (OUT/adapter), or an "
                    "AdapterHub task adapter saved with its head")
    ev.add_argument("--task", choices=TASK_CHOICES, help="the task, for an AdapterHub tagging head: ner (default) or pos")
    ev.add_argument("--lang-adapter", required=True, help="target language adapter dir (ours or AdapterHub's), "
                    "or 'none' for a task adapter trained on the bare encoder")
    ev.add_argument("--lang", required=True, help="target language code (recorded in the results)")
    ev.add_argument("--data", help="evaluation file, or --dataset")
    add_dataset_flags(ev, split="test")
    ev.add_argument("--labels", help="SIQA: the separate labels file")
    ev.add_argument("--mlqa-normalisation", action="store_true", help="QA: MLQA's language-specific answer normalisation")
    ev.add_argument("--batch-size", type=int, default=32, help="examples per batch")
    ev.add_argument("--force", action="store_true", help="load adapters made for another base")
    ev.add_argument("--adapter-drop-inference", type=int, help="AdapterDrop at inference: remove the adapters of the lowest N "
                    "layers (default: the N of a specialised AdapterDrop training, else 0)")
    ev.add_argument("--output", required=True, help="results JSON file")

    rep = sub.add_parser("report", help="per-language table and chart, mean ± std over seeds")
    rep.add_argument("results", nargs="+", help="JSON files written by xling eval")
    rep.add_argument("--output-dir", required=True, help="where report.json, report.md and <task>.png go")
    rep.add_argument("--source-language", help="left out of the average over target languages")
    base = sub.add_parser("baseline", help="majority-class baseline (classification, pos): a results JSON for xling report")
    base.add_argument("--task", required=True, choices=["classification", "pos"], help="the task")
    base.add_argument("--train", required=True, help="training file (its most frequent label is predicted)")
    base.add_argument("--data", required=True, help="evaluation file")
    base.add_argument("--lang", required=True, help="language code of --data (recorded in the results)")
    base.add_argument("--output", required=True, help="results JSON file (task '<task>_majority' in xling report)")
    exp = sub.add_parser("export", help="write an adapter (and a task adapter's head) in AdapterHub's format")
    exp.add_argument("--format", required=True, choices=["adapterhub"], help="adapterhub: a directory that "
                     "AdapterHub's model.load_adapter reads (adapters 1.x)")
    exp.add_argument("--adapter", required=True, help="adapter directory written by train-lang or train-task")
    exp.add_argument("--output-dir", required=True, help="the directory to write")
    exp.add_argument("--name", help="the adapter's name in AdapterHub (default: its saved name)")
    add_method_commands(sub, _training_flags)
    for module in (*ENCODER_COMMANDS.values(), *HEAD_COMMANDS.values()):  # import-e5 ... tiny-model, train-parser
        module.add_command(sub)
    seq2seq_cli.add_commands(sub)  # train-translation, translate (xling.seq2seq: translation models)
    return parser


def _options(args):
    """The TrainOptions of a training command; a rerun with other settings than the checkpoints' run fails
    here, before the model loads (``fit_and_publish`` checks again, for API callers)."""
    from pathlib import Path

    from .train import TrainOptions, check_resume_settings, last_complete_checkpoint

    options = TrainOptions.from_args(args)
    check_resume_settings(options, last_complete_checkpoint(Path(options.output_dir) / "checkpoints"))
    return options


#: ``--lang-adapter none``: no language adapter (a task adapter on the bare encoder).
NO_LANG_ADAPTER = "none"


def run(args) -> None:
    if args.command in ("train-task", "eval") and args.lang_adapter == NO_LANG_ADAPTER:
        args.lang_adapter = None
    if args.command == "train-lang":
        from .train import CurveOptions, train_language_adapter

        curve = None if args.heldout_text is None else CurveOptions(args.heldout_text, args.eval_steps,
                                                                     args.plateau_delta, args.plateau_window)
        out = train_language_adapter(args.model, args.lang, args.text, _options(args), skip_last_layer=args.skip_last_layer,
                                     invertible=not args.no_invertible, drop=drop_config_from_args(args),
                                     adapter_config=adapter_config_from_args(args, "language"), curve=curve)
        print(f"language adapter written to {out}")
    elif args.command == "train-task":
        from .tasks import TASKS
        from .train import is_main_process, train_task_adapter

        if args.adapter_kind == K_ADAPTER_KIND:  # Wang et al. (2021): beside the encoder, xling.k_adapter_train
            from .k_adapter_train import k_adapter_config_from_args, train_k_adapter_from_args

            k_adapter_config_from_args(args)  # bad flags fail before the dev file is read
        else:
            drop, adapter_config = drop_config_from_args(args), adapter_config_from_args(args, "task")
        train = data_source(args, "train")
        if args.dev:  # a bad dev file fails before training, not after it
            TASKS[args.task].read(args.dev, args.dev_labels)
        if args.adapter_kind == K_ADAPTER_KIND:
            out = train_k_adapter_from_args(args, train, _options(args))
        else:
            out = train_task_adapter(args.model, args.task, args.lang_adapter, train, _options(args),
                                     task_name=args.name, labels_file=args.train_labels,
                                     skip_last_layer=args.skip_last_layer, force=args.force,
                                     adapter_config=adapter_config, drop=drop, train_layer_norms=args.train_layer_norms)
        print(f"task adapter written to {out}")
        if args.dev and is_main_process():
            from .task_info import write_results
            from .inference import evaluate_task_adapter

            results = evaluate_task_adapter(args.model, str(out), args.lang_adapter, args.dev, language="dev",
                                            labels_file=args.dev_labels, force=args.force)
            write_results(results, out.parent / "dev_results.json")
            print(f"dev {results['main_metric']}: {results[results['main_metric']]:.2f} -> {out.parent / 'dev_results.json'}")
    elif args.command == "eval":
        from .task_info import write_results
        from .inference import evaluate_task_adapter

        data = data_source(args, "data")  # a file, or --dataset NAME --dataset-config CONFIG (the local HF cache)
        results = evaluate_task_adapter(args.model, args.task_adapter, args.lang_adapter, data, args.lang,
                                        labels_file=args.labels, mlqa_normalisation=args.mlqa_normalisation,
                                        batch_size=args.batch_size, force=args.force, drop_layers=args.adapter_drop_inference,
                                        task=args.task)
        write_results(results, args.output)
        print(f"{args.lang} {results['main_metric']}: {results[results['main_metric']]:.2f} -> {args.output}")
    elif args.command == "export":
        from .adapterhub import export_adapterhub_dir

        out = export_adapterhub_dir(args.adapter, args.output_dir, name=args.name)
        print(f"AdapterHub adapter written to {out} (load it with model.load_adapter({str(out)!r}))")
    elif args.command == "report":
        from .report import markdown, write_report

        summary = write_report(args.results, args.output_dir, args.source_language)
        print(markdown(summary))
    elif args.command == "baseline":
        from .task_info import write_results
        from .tasks import TASKS

        module = TASKS[args.task]
        scores = module.majority_baseline(module.read(args.train), module.read(args.data))
        results = {"task": f"{args.task}_majority", "mode": "majority_baseline", "language": args.lang, "seed": None,
                   "train": str(args.train), "data": str(args.data), **scores}
        write_results(results, args.output)
        print(f"{args.lang} majority baseline {results['main_metric']}: {results[results['main_metric']]:.2f} -> {args.output}")
    elif args.command in METHOD_COMMANDS:
        run_method_command(args, _options)
    elif args.command in ENCODER_COMMANDS:
        ENCODER_COMMANDS[args.command].run(args)
    elif args.command in seq2seq_cli.COMMANDS:
        seq2seq_cli.run(args)
    elif args.command in HEAD_COMMANDS:
        HEAD_COMMANDS[args.command].run(args)


#: Errors that mean bad input (files, adapters, model directories, options): reported in one line, exit 1.
KNOWN_ERRORS = (DataError, AdapterFormatError, FingerprintMismatchError, OSError, KeyError, ValueError)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except KNOWN_ERRORS as err:
        if os.environ.get("XLING_TRACEBACK"):  # for debugging: the full traceback instead of one line
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        if type(err) in (OSError, PermissionError, FileNotFoundError, IsADirectoryError, NotADirectoryError,
                         FileExistsError) and err.errno is not None:  # a raw errno, maybe naming a hidden temp path
            message = describe_os_error(err)
        print(f"xling: error: {args.command}: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
