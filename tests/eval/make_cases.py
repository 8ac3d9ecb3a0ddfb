#!/usr/bin/env python3
"""Writes the hand-built evaluation cases of tests/eval: qrels and run files plus a manifest.

    make_cases.py OUT_DIR

OUT_DIR/manifest.json lists every case: {"name", "note", "qrels", "run", "k", "complete", "ignore_identical_ids"},
file names relative to OUT_DIR. Each case aims at one trap of trec_eval's definitions (ties, float32 scores,
graded and negative relevance, missing judgments, queries on one side only, cutoffs beyond the ranking); a few
seeded random cases mix them all. The expected values are not written here: the test computes them with
trec_oracle.py and compares omni-embed's to them.
"""

import json
import os
import random
import sys

CASES = []


def case(name, note, qrels, run, k=(1, 3, 5, 10, 100, 1000), complete=False, ignore_identical_ids=False,
         beir_tsv=False, run_text=None):
    """qrels: [(qid, docid, rel)]; run: [(qid, docid, score_text)] written in that order, rank = position."""
    CASES.append(dict(name=name, note=note, qrels=qrels, run=run, k=list(k), complete=complete,
                      ignore_identical_ids=ignore_identical_ids, beir_tsv=beir_tsv, run_text=run_text))


def ranked(qid, docs):
    """[(docid, score)] -> run rows for one query."""
    return [(qid, d, s) for d, s in docs]


# --- single queries, one trap each -------------------------------------------------------------------------------
case("first_is_relevant", "one relevant document at rank 1",
     [("q1", "d1", 1), ("q1", "d2", 0)], ranked("q1", [("d1", "0.9"), ("d2", "0.5")]))
case("relevant_at_rank_3", "the only relevant document third",
     [("q1", "d3", 1)], ranked("q1", [("d1", "3"), ("d2", "2"), ("d3", "1"), ("d4", "0.5")]))
case("relevant_not_retrieved", "relevant documents exist but none is retrieved",
     [("q1", "x1", 1), ("q1", "x2", 2), ("q1", "d1", 0)], ranked("q1", [("d1", "1"), ("d2", "0.5")]))
case("graded_out_of_order", "graded relevance 0..3 ranked badly",
     [("q1", "a", 3), ("q1", "b", 2), ("q1", "c", 1), ("q1", "d", 0)],
     ranked("q1", [("d", "4"), ("c", "3"), ("b", "2"), ("a", "1")]))
case("graded_ideal_order", "graded relevance in the ideal order: nDCG 1 at every cutoff",
     [("q1", "a", 3), ("q1", "b", 2), ("q1", "c", 1), ("q1", "d", 0)],
     ranked("q1", [("a", "4"), ("b", "3"), ("c", "2"), ("d", "1")]))
case("tie_two_docs", "equal scores: the larger id ranks first, so the relevant 'a' is second",
     [("q1", "a", 1), ("q1", "b", 0)], ranked("q1", [("a", "0.5"), ("b", "0.5")]))
case("tie_many_docs", "twelve documents with one score and mixed graded relevance",
     [("q1", "d%02d" % i, (i * 7) % 4) for i in range(12)],
     ranked("q1", [("d%02d" % i, "0.25") for i in range(12)]), k=(1, 3, 5, 10, 12, 20))
case("tie_numeric_ids", "ties are broken by byte strings, not numbers: '9' > '2' > '10'",
     [("q1", "10", 1), ("q1", "2", 2), ("q1", "9", 0)], ranked("q1", [("10", "1"), ("2", "1"), ("9", "1")]))
case("tie_prefix_ids", "byte order with prefixes: 'd1a' > 'd10' > 'd1'",
     [("q1", "d1", 3), ("q1", "d10", 0), ("q1", "d1a", 1)], ranked("q1", [("d1", "2"), ("d10", "2"), ("d1a", "2")]))
case("float32_equal_scores", "1.0 and 1.00000001 differ as doubles but are one float32: a tie, 'b' first",
     [("q1", "a", 1), ("q1", "b", 0)], ranked("q1", [("a", "1.00000001"), ("b", "1.0")]))
case("float32_equal_three", "0.3, 0.30000001192092896 and 0.30000002 are one float32; 0.30000004 is the next",
     [("q1", "p", 2), ("q1", "q", 0), ("q1", "r", 1), ("q1", "s", 1)],
     ranked("q1", [("p", "0.30000002"), ("q", "0.3"), ("r", "0.30000001192092896"), ("s", "0.30000004")]))
case("float32_one_ulp_apart", "1 and 1 + 2^-23 are distinct float32 values: no tie",
     [("q1", "a", 1), ("q1", "b", 0)], ranked("q1", [("a", "1.00000011920928955078125"), ("b", "1")]))
case("judged_nonrelevant_and_unjudged", "judged-0 and unjudged documents between the relevant ones",
     [("q1", "r1", 1), ("q1", "r2", 2), ("q1", "n1", 0), ("q1", "n2", 0)],
     ranked("q1", [("n1", "9"), ("u1", "8"), ("r1", "7"), ("u2", "6"), ("n2", "5"), ("r2", "4")]))
case("no_relevant_judgment", "a query judged, but only with 0: every measure 0, and it counts in the mean",
     [("q1", "a", 0), ("q1", "b", 0), ("q2", "c", 1)],
     ranked("q1", [("a", "1"), ("b", "0.5")]) + ranked("q2", [("c", "1")]))
case("judged_query_missing", "q2 is judged but absent from the run: not counted",
     [("q1", "a", 1), ("q2", "b", 1)], ranked("q1", [("a", "1"), ("z", "0.5")]))
case("judged_query_missing_complete", "as judged_query_missing with --complete: q2 counts as 0",
     [("q1", "a", 1), ("q2", "b", 1)], ranked("q1", [("a", "1"), ("z", "0.5")]), complete=True)
case("run_query_unjudged", "q3 is in the run only: skipped",
     [("q1", "a", 1)], ranked("q1", [("a", "1")]) + ranked("q3", [("a", "2"), ("b", "1")]))
case("k_beyond_ranking", "three documents, cutoffs up to 1000",
     [("q1", "a", 1), ("q1", "c", 2), ("q1", "e", 1)], ranked("q1", [("a", "3"), ("b", "2"), ("c", "1")]))
case("more_relevant_than_k", "fifteen relevant documents: recall and AP stay below 1 at small k",
     [("q1", "r%02d" % i, 1 + i % 3) for i in range(15)],
     ranked("q1", [("r%02d" % i, str(100 - i)) for i in range(15)]), k=(1, 5, 10, 15, 30))
case("negative_relevance", "judgments -1 and -2 are neither relevant nor part of the ideal ranking",
     [("q1", "neg1", -1), ("q1", "neg2", -2), ("q1", "a", 1), ("q1", "b", 2)],
     ranked("q1", [("neg1", "5"), ("neg2", "4"), ("a", "3"), ("b", "2")]))
case("only_negative_judgments", "a query judged only negatively scores 0 (trec_eval leaves it undefined)",
     [("q1", "a", -1), ("q2", "b", 1)], ranked("q1", [("a", "1")]) + ranked("q2", [("b", "1")]))
case("ideal_from_unretrieved", "a relevance-3 document never retrieved still sets the ideal DCG",
     [("q1", "top", 3), ("q1", "a", 1), ("q1", "b", 1)], ranked("q1", [("a", "2"), ("b", "1")]))
case("deep_ranking", "1,200 documents; relevant at ranks 1, 150, 1000 and 1001",
     [("q1", "doc%04d" % i, 1) for i in (0, 149, 999, 1000)],
     ranked("q1", [("doc%04d" % i, repr(1.0 - i / 2048.0)) for i in range(1200)]))
case("first_relevant_at_4", "MRR is 0 below the first relevant rank and 1/4 from k = 4 on",
     [("q1", "d4", 1), ("q1", "d6", 1)],
     ranked("q1", [("d%d" % i, str(10 - i)) for i in range(1, 9)]), k=(1, 3, 4, 5, 10))
case("signed_zero_and_negative_scores", "-0.0 and 0.0 are equal scores; negative scores rank last",
     [("q1", "a", 1), ("q1", "m", 2), ("q1", "z", 0)],
     ranked("q1", [("a", "0.0"), ("z", "-0.0"), ("m", "-1.5"), ("n", "-1e-3")]))
case("exponent_scores", "scores written with exponents",
     [("q1", "a", 1), ("q1", "b", 2)], ranked("q1", [("a", "5E2"), ("b", "1e-3"), ("c", "2.5e+1")]))
case("custom_cutoffs", "unsorted cutoffs with a duplicate: 7, 2, 7",
     [("q1", "d%d" % i, i % 3) for i in range(10)], ranked("q1", [("d%d" % i, str(i)) for i in range(10)]),
     k=(7, 2, 7))
case("ignore_identical_ids", "BEIR drops a retrieved document named like its query",
     [("q1", "q1", 1), ("q1", "a", 1)], ranked("q1", [("q1", "9"), ("b", "5"), ("a", "3")]),
     ignore_identical_ids=True)
case("identical_ids_kept", "the same files without the option: the self-match counts",
     [("q1", "q1", 1), ("q1", "a", 1)], ranked("q1", [("q1", "9"), ("b", "5"), ("a", "3")]))
case("identical_id_only", "the only retrieved document is dropped: an empty ranking that still counts",
     [("q1", "x", 1), ("q2", "y", 1)], ranked("q1", [("q1", "1")]) + ranked("q2", [("y", "1")]),
     ignore_identical_ids=True)
case("beir_tsv_qrels", "qrels in BEIR's TSV with its header",
     [("q1", "a", 2), ("q1", "b", 1), ("q2", "c", 1)],
     ranked("q1", [("b", "2"), ("a", "1")]) + ranked("q2", [("x", "1"), ("c", "0.5")]), beir_tsv=True)
case("non_ascii_ids", "UTF-8 ids in a tie: bytes compare unsigned, so 'é' (0xC3) ranks above 'z'",
     [("q1", "\u00e9", 1), ("q1", "z", 0), ("q1", "\u65e5", 2)],
     ranked("q1", [("z", "1"), ("\u00e9", "1"), ("\u65e5", "1")]))
case("run_file_noise", "comments, blank lines, CRLF, extra fields after the tag, a rank column that disagrees",
     [("q1", "a", 1), ("q1", "b", 2), ("q1", "c", 0)], [],
     run_text="# a comment\n\nq1 Q0 a 1 0.2 tag extra\r\nq1 Q0 c 2 0.9 tag\n  \nq1 Q0 b 3 0.5 tag\n")
case("high_grades", "linear gain: grade 10 counts ten times grade 1",
     [("q1", "a", 10), ("q1", "b", 1), ("q1", "c", 4)], ranked("q1", [("b", "3"), ("a", "2"), ("c", "1")]))
case("many_queries", "ten queries with varied rankings averaged",
     [("q%d" % i, "d%d" % j, (i + j) % 3) for i in range(10) for j in range(6)],
     [("q%d" % i, "d%d" % j, str((i * 5 + j * 3) % 7)) for i in range(10) for j in range(8)], k=(1, 3, 5, 10))


# --- seeded random cases: every trap at once, many queries ----------------------------------------------------
def random_case(seed):
    rng = random.Random(seed)
    qrels, run = [], []
    for q in range(rng.randint(8, 25)):
        qid = "rq%d" % q
        pool = ["doc%d" % rng.randint(0, 60) for _ in range(rng.randint(1, 30))]
        pool = sorted(set(pool))
        in_qrels, in_run = rng.random() > 0.1, rng.random() > 0.1
        if in_qrels:
            for d in rng.sample(pool, rng.randint(1, len(pool))):
                qrels.append((qid, d, rng.choice((-1, 0, 0, 1, 1, 2, 3))))
        if in_run or not in_qrels:
            grid = [str(v) for v in (0.1, 0.2, 0.2, 0.5, 0.75, 1.0, 1.00000001, -0.3)]
            for d in rng.sample(pool, rng.randint(1, len(pool))):
                run.append((qid, d, rng.choice(grid) if rng.random() < 0.7 else repr(rng.uniform(-1, 1))))
    if not qrels:
        qrels.append(("rq0", "doc0", 1))
    case("random_%d" % seed, "seeded random mix of ties, graded, negative and missing judgments", qrels, run,
         k=(1, 3, 5, 10, 20), complete=seed % 2 == 1)


for seed in range(1, 7):
    random_case(seed)


def write(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    manifest = []
    for c in CASES:
        qrels_name = c["name"] + (".qrels.tsv" if c["beir_tsv"] else ".qrels")
        with open(os.path.join(out_dir, qrels_name), "w", encoding="utf-8", newline="") as f:
            if c["beir_tsv"]:
                f.write("query-id\tcorpus-id\tscore\n")
                for qid, docid, rel in c["qrels"]:
                    f.write("%s\t%s\t%d\n" % (qid, docid, rel))
            else:
                for qid, docid, rel in c["qrels"]:
                    f.write("%s 0 %s %d\n" % (qid, docid, rel))
        run_name = c["name"] + ".run"
        with open(os.path.join(out_dir, run_name), "w", encoding="utf-8", newline="") as f:
            if c["run_text"] is not None:
                f.write(c["run_text"])
            for rank, (qid, docid, score) in enumerate(c["run"], start=1):
                f.write("%s Q0 %s %d %s test\n" % (qid, docid, rank, score))
        manifest.append(dict(name=c["name"], note=c["note"], qrels=qrels_name, run=run_name, k=c["k"],
                             complete=c["complete"], ignore_identical_ids=c["ignore_identical_ids"]))
    with open(os.path.join(out_dir, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_cases.py OUT_DIR")
    write(sys.argv[1])
