"""P5's reference side: AdapterHub ``adapters`` (1.3.0) MAD-X language-adapter MLM training steps.

Runs in its own venv (adapters 1.3.0 pins transformers 4.57), so this file
imports only torch at module level and nothing from this repository; the
shared batch builder ``mlm_batch`` is also imported by ``bench.xling_bench``
so both sides train on identical inputs.  Protocol: see ``bench.harness.Worker``.

    /tmp/ah-venv/bin/python bench/adapterhub_worker.py --threads 1
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


def serve(step, info: dict) -> None:
    """READY, then ``STEP n`` -> ``TIMES [...]`` (the protocol of ``bench.harness.Worker``)."""
    print("INFO " + json.dumps(info), flush=True)
    print("READY", flush=True)
    for line in sys.stdin:
        command = line.split()
        if not command or command[0] == "QUIT":
            break
        times = []
        for _ in range(int(command[1])):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        print("TIMES " + json.dumps(times), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="AdapterHub MAD-X language adapter MLM steps (P5 reference)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    import adapters
    import transformers
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    config = XLMRobertaConfig(**(QUICK_CONFIG if args.quick else XLMR_CONFIG))
    model = XLMRobertaForMaskedLM(config)
    adapters.init(model)
    model.add_adapter("lang", config="seq_bn_inv")  # MAD-X language adapter (rf 2) + NICE invertible adapter
    model.train_adapter("lang")
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    batch = mlm_batch(config.vocab_size, QUICK_BATCH if args.quick else BATCH,
                      QUICK_SEQUENCE if args.quick else SEQUENCE)

    def step() -> None:
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    serve(step, {"adapters": adapters.__version__, "transformers": transformers.__version__,
                 "torch": torch.__version__, "trainable": sum(p.numel() for p in trainable),
                 "attention": getattr(config, "_attn_implementation", None)})


if __name__ == "__main__":
    main()
