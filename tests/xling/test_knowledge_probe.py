"""studies/knowledge_probe.py: the held-out split keeps a term pair on one side; spans; the verdict can fail."""

from data_prep.conceptnet import TEMPLATES
from studies.knowledge_probe import object_span, pair_key, split, verdict


def _assertions():
    rows = []
    for i in range(60):
        rows.append((f"слово{i}", "Synonym", f"другое{i}"))
        rows.append((f"другое{i}", "Synonym", f"слово{i}"))  # the reverse direction
        rows.append((f"слово{i}", "RelatedTo", f"другое{i}"))  # the same pair under another relation
        rows.append((f"форма{i}", "FormOf", f"слово{i}"))
    return rows


def test_split_keeps_every_held_out_pair_out_of_training():
    parts = split(_assertions(), per_relation=5, seen_per_relation=5, train_size=1000, min_count=10)
    held = {pair_key(s, e) for s, _, e in parts["heldout"]}
    assert len(parts["heldout"]) == 10 and {r for _, r, _ in parts["heldout"]} == {"Synonym", "RelatedTo"}
    assert not held & {pair_key(s, e) for s, _, e in parts["train"]}
    assert all(r != "FormOf" for _, r, _ in parts["train"])
    assert set(parts["seen"]) <= set(parts["train"])
    assert parts == split(list(reversed(_assertions())), 5, 5, 1000, 10)  # order of the input does not matter


def test_object_span_is_the_end_term_in_every_template():
    for relation in TEMPLATES:
        text, lo, hi = object_span("до хуя", relation, "до_фига")
        assert text[lo:hi] == "до фига"


def test_verdict_needs_every_seed_and_a_margin_beyond_the_spread():
    assert verdict(5.0, [4.0, 4.1, 4.2], sign=-1)[2] == "gain"  # lower CE is better
    assert verdict(5.0, [4.0, 5.1, 4.2], sign=-1)[2] == "-"  # one seed worse than bare
    assert verdict(5.0, [4.5, 4.9, 4.0], sign=-1)[2] == "-"  # margin 0.53 < range 0.9
    assert verdict(10.0, [8.0, 8.5, 7.9], sign=1)[2] == "loss"


def test_summary_tables_compare_with_bare_and_the_control():
    from studies.knowledge_probe import summary_tables

    def scores(ce):
        return {"scores": {rel: {"terms": 10, "piece_ce": ce, "piece_accuracy": 10 - ce, "term_accuracy": 0.0}
                           for rel in ("all", "Synonym")}}

    result = {"settings": {"bare": scores(8.0), "s1": scores(6.0), "s2": scores(6.1), "control1": scores(6.05)}}
    lines, table = summary_tables(result)
    assert table["all"]["piece_ce"]["verdict"] == "gain"
    assert table["all"]["piece_ce"]["verdict_vs_control"] == "-"  # s2 is worse than the control
    assert len(lines) == 4 and lines[2].startswith("| all | 10 |")


def test_verdict_against_the_controls_needs_a_margin_beyond_their_range_too():
    assert verdict(5.0, [4.0, 4.1], sign=-1, reference_spread=0.5)[2] == "gain"
    assert verdict(5.0, [4.0, 4.1], sign=-1, reference_spread=1.2)[2] == "-"
