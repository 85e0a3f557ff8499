"""A small XLM-R-shaped model pretrained from scratch on local text, for smoke runs and demos.

Real MAD-X starts from a pretrained XLM-R (``from_pretrained`` on a local
directory the user downloaded).  Where none can be had, as on a machine
without network, this builds a model of the same architecture: a
SentencePiece tokenizer trained on the given text, ``XLMRobertaForMaskedLM``
with the sizes asked for (``layer_norm_eps=1e-5`` as in real XLM-R), and a
short masked-LM pretraining run with the transformers ``Trainer``.  It is a
smoke-test base, not a substitute for XLM-R: say so wherever its numbers are
shown.

    xling tiny-model --text data/mono/*.txt --output-dir work/tiny-xlmr --max-minutes 3
"""

from __future__ import annotations

import logging
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from adapter_core.io import publish_directory

logger = logging.getLogger("xling.tiny_model")


@dataclass
class TinyModelConfig:
    """Sizes and budget of the model that ``build_tiny_xlmr`` makes."""

    # SentencePiece vocabulary size (unigram model).
    vocab_size: int = 4000
    # Hidden size (XLM-R base: 768).
    hidden_size: int = 64
    # Transformer layers (XLM-R base: 12).
    num_layers: int = 4
    # Attention heads; must divide hidden_size.
    num_heads: int = 4
    # Feed-forward width (XLM-R base: 3072 = 4 x hidden).
    intermediate_size: int = 256
    # Longest pretraining input in tokens.
    max_length: int = 64
    # Rows of the position table, as in real XLM-R (512 tokens + 2 offset), so that
    # later commands may use longer inputs than pretraining did.
    max_position_embeddings: int = 514
    # Lines of text kept per input file for tokenizer training and pretraining.
    max_lines_per_file: int = 20000
    # Pretraining stops after this many optimizer steps ...
    max_steps: int = 2000
    # ... or after this many minutes, whichever comes first (0: no time limit).
    max_minutes: float = 3.0
    # Sequences per step.
    batch_size: int = 32
    # Peak learning rate (linear warm-up over 5% of the steps, then linear decay).
    learning_rate: float = 1e-3
    # Random seed for sampling, initialisation and masking.
    seed: int = 0


def read_lines(files: list[str], limit: int, seed: int) -> list[str]:
    """Non-empty lines from each file, at most ``limit`` per file (a seeded sample)."""
    rng = random.Random(seed)
    lines: list[str] = []
    for name in files:
        path = Path(name)
        if not path.is_file():
            raise FileNotFoundError(f"text file not found: {path}")
        text = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not text:
            raise ValueError(f"{path}: no text")
        rng.shuffle(text)
        lines.extend(text[:limit])
    return lines


def train_tokenizer(lines: list[str], out_dir: Path, vocab_size: int, seed: int):
    """A unigram SentencePiece model loaded as XLM-R's tokenizer.

    ``XLMRobertaTokenizer(vocab_file=...)`` silently ignores the file in
    transformers 5; ``from_pretrained(dir)`` converts
    ``sentencepiece.bpe.model`` properly.
    """
    import sentencepiece as spm
    from transformers import XLMRobertaTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
        spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(Path(tmp) / "sentencepiece.bpe"),
                                       vocab_size=vocab_size, model_type="unigram", hard_vocab_limit=False,
                                       character_coverage=0.9995, minloglevel=2, num_threads=2)
        tokenizer = XLMRobertaTokenizer.from_pretrained(tmp)
        tokenizer.save_pretrained(out_dir)
    return tokenizer


def stop_after_minutes(minutes: float):
    """A Trainer callback that stops training once a wall-clock budget is spent (0: never); transformers is
    imported here, so that ``xling --help`` need not import it."""
    from transformers import TrainerCallback

    class StopAfterMinutes(TrainerCallback):
        def __init__(self):
            self.start = time.monotonic()

        def on_train_begin(self, args, state, control, **kwargs):
            self.start = time.monotonic()

        def on_step_end(self, args, state, control, **kwargs):
            if minutes and time.monotonic() - self.start > 60 * minutes:
                logger.info("time budget of %.1f minutes reached at step %d", minutes, state.global_step)
                control.should_training_stop = True

    return StopAfterMinutes()


def build_tiny_xlmr(text_files: list[str], out_dir: str | Path, config: TinyModelConfig = TinyModelConfig()) -> Path:
    """Tokenizer + ``XLMRobertaForMaskedLM`` pretrained on ``text_files``, saved to ``out_dir``."""
    import torch
    from transformers import (DataCollatorForLanguageModeling, Trainer, TrainingArguments, XLMRobertaConfig,
                              XLMRobertaForMaskedLM)

    out_dir = Path(out_dir)
    if (out_dir / "config.json").is_file() and (out_dir / "model.safetensors").is_file():
        logger.info("%s already holds a model; nothing to do", out_dir)
        return out_dir
    torch.manual_seed(config.seed)
    lines = read_lines(text_files, config.max_lines_per_file, config.seed)
    with tempfile.TemporaryDirectory(dir=out_dir.parent if out_dir.parent.exists() else None) as tmp:
        staging = Path(tmp) / "model"
        tokenizer = train_tokenizer(lines, staging, config.vocab_size, config.seed)
        model_config = XLMRobertaConfig(
            vocab_size=len(tokenizer), hidden_size=config.hidden_size, num_hidden_layers=config.num_layers,
            num_attention_heads=config.num_heads, intermediate_size=config.intermediate_size,
            max_position_embeddings=max(config.max_position_embeddings, config.max_length + 2), layer_norm_eps=1e-5,
            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id)
        model = XLMRobertaForMaskedLM(model_config)
        encoded = tokenizer(lines, truncation=True, max_length=config.max_length)
        dataset = [{"input_ids": ids} for ids in encoded["input_ids"]]
        arguments = TrainingArguments(
            output_dir=str(Path(tmp) / "trainer"), max_steps=config.max_steps,
            per_device_train_batch_size=config.batch_size, learning_rate=config.learning_rate,
            warmup_steps=max(1, config.max_steps // 20), lr_scheduler_type="linear", weight_decay=0.01,
            logging_steps=50, save_strategy="no", report_to=[], use_cpu=not torch.cuda.is_available(),
            seed=config.seed, dataloader_num_workers=0, disable_tqdm=False)
        collator = DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=0.15)
        trainer = Trainer(model=model, args=arguments, train_dataset=dataset, data_collator=collator,
                          processing_class=tokenizer, callbacks=[stop_after_minutes(config.max_minutes)])
        result = trainer.train()
        logger.info("pretrained %d steps, final training loss %.3f", trainer.state.global_step, result.training_loss)

        def build(directory: Path) -> None:
            tokenizer.save_pretrained(directory)
            model.save_pretrained(directory)

        publish_directory(out_dir, build)  # replaces a partial directory from an interrupted run only once done
    return out_dir


def add_command(sub) -> None:
    """``xling tiny-model``."""
    parser = sub.add_parser("tiny-model", help="pretrain a small XLM-R-shaped model on local text (smoke tests, demos)")
    parser.add_argument("--text", nargs="+", required=True, help="plain-text files, one sentence per line")
    parser.add_argument("--output-dir", required=True, help="model directory to write (config, weights, tokenizer)")
    for name, default in vars(TinyModelConfig()).items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(default), default=default,
                            help=f"TinyModelConfig.{name} (default {default})")


def run(args) -> None:
    config = TinyModelConfig(**{k: getattr(args, k) for k in vars(TinyModelConfig())})
    build_tiny_xlmr(args.text, args.output_dir, config)
    print(args.output_dir)
