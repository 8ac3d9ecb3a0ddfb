#!/usr/bin/env python3
"""Independent oracle for omni-embed's retrieval metrics, written from trec_eval 9.0.8's documented definitions.

Plain Python, no third-party package. It shares no code with src/eval: it reads the files itself and computes every
measure straight from its definition, query by query and cutoff by cutoff.

    trec_oracle.py --qrels QRELS --run RUN [--k 1,3,5,10,100,1000] [--complete] [--ignore-identical-ids]

prints {"queries": n, "metrics": {name: mean}, "per_query": {qid: {name: value}}, "run_only": [...],
"judged_only": [...]}, the names being ndcg_cut_k, recall_k, map_cut_k and mrr_cut_k.

Definitions (trec_eval 9.0.8, relevance level 1):
  ranking     documents by score descending, the score rounded to a 32-bit float; equal scores by document id,
              larger byte string first. The rank column is ignored.
  relevant    judged >= 1. Unjudged, 0 and negative judgments are not relevant and have no gain.
  ndcg_cut_k  sum_{r<=k} gain_r / log2(r+1), divided by the same sum over the positive judgments sorted descending;
              0 when there is no positive judgment.
  recall_k    relevant in the top k / relevant judged (0 when none judged).
  map_cut_k   sum over relevant documents at rank r <= k of (relevant in top r) / r, over relevant judged (0 if none).
  mrr_cut_k   1 / rank of the first relevant document within the top k, else 0.
Queries: those in both files; with --complete every judged query, a missing one scoring 0. Means are plain averages.
"""

import argparse
import functools
import json
import math
import struct
import sys

MEASURES = ("ndcg_cut", "recall", "map_cut", "mrr_cut")


def float32(text):
    # Parse as a double, then round to the nearest 32-bit float, as trec_eval's atof-then-float does.
    return struct.unpack("<f", struct.pack("<f", float(text)))[0]


def content_lines(path):
    with open(path, encoding="utf-8", newline="") as f:
        for raw in f:
            line = raw.rstrip("\r\n")
            if line.strip() == "" or line.strip().startswith("#"):
                continue
            yield line


def read_qrels(path):
    qrels = {}
    lines = list(content_lines(path))
    beir = len(lines[0].strip().split("\t")) == 3
    for i, line in enumerate(lines):
        if beir:
            fields = line.split("\t")
            if i == 0 and not fields[2].strip().lstrip("+-").isdigit():
                continue  # the header
            qid, docid, rel = fields[0], fields[1], int(fields[2])
            qrels.setdefault(qid, {})[docid] = rel  # the last judgment of a pair wins, as BEIR's loader does
        else:
            qid, _, docid, rel = line.split()
            if docid in qrels.get(qid, {}):
                raise ValueError("duplicate judgment %s %s" % (qid, docid))
            qrels.setdefault(qid, {})[docid] = int(rel)
    return qrels


def read_run(path):
    run = {}
    for line in content_lines(path):
        fields = line.split()
        run.setdefault(fields[0], []).append((fields[2], float32(fields[4])))
    return run


def trec_order(a, b):
    (id_a, score_a), (id_b, score_b) = a, b
    if score_a != score_b:
        return -1 if score_a > score_b else 1
    key_a, key_b = id_a.encode("utf-8"), id_b.encode("utf-8")
    if key_a == key_b:
        return 0
    return -1 if key_a > key_b else 1


def discounted(gains, k):
    total = 0.0
    for rank, gain in enumerate(gains[:k], start=1):
        if gain > 0:
            total += gain / math.log2(rank + 1)
    return total


def query_values(judged, ranked_ids, k):
    top = ranked_ids[:k]
    rel_of = [judged.get(d, 0) for d in top]  # unjudged documents count as judged 0
    positive = sorted((r for r in judged.values() if r > 0), reverse=True)
    n_relevant = sum(1 for r in judged.values() if r >= 1)

    ideal = discounted(positive, k)
    ndcg = discounted([max(r, 0) for r in rel_of], k) / ideal if ideal > 0 else 0.0

    found = [rank for rank, r in enumerate(rel_of, start=1) if r >= 1]
    recall = len(found) / n_relevant if n_relevant else 0.0
    precision_sum = 0.0
    for seen, rank in enumerate(found, start=1):
        precision_sum += seen / rank
    ap = precision_sum / n_relevant if n_relevant else 0.0
    rr = 1.0 / found[0] if found else 0.0
    return {"ndcg_cut": ndcg, "recall": recall, "map_cut": ap, "mrr_cut": rr}


def evaluate(qrels, run, cutoffs, complete, ignore_identical_ids):
    per_query = {}
    for qid, docs in run.items():
        if qid not in qrels:
            continue
        if ignore_identical_ids:
            docs = [d for d in docs if d[0] != qid]
        ranked = [d[0] for d in sorted(docs, key=functools.cmp_to_key(trec_order))]
        per_query[qid] = {}
        for k in cutoffs:
            for name, value in query_values(qrels[qid], ranked, k).items():
                per_query[qid]["%s_%d" % (name, k)] = value
    judged_only = sorted((q for q in qrels if q not in run), key=lambda q: q.encode("utf-8"))
    if complete:
        for qid in judged_only:
            per_query[qid] = {"%s_%d" % (name, k): 0.0 for name in MEASURES for k in cutoffs}
    order = sorted(per_query, key=lambda q: q.encode("utf-8"))
    means = {}
    for name in MEASURES:
        for k in cutoffs:
            key = "%s_%d" % (name, k)
            total = 0.0
            for qid in order:
                total += per_query[qid][key]
            means[key] = total / len(order) if order else 0.0
    return {
        "queries": len(order),
        "metrics": means,
        "per_query": {q: per_query[q] for q in order},
        "run_only": sorted((q for q in run if q not in qrels), key=lambda q: q.encode("utf-8")),
        "judged_only": judged_only,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qrels", required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--k", default="1,3,5,10,100,1000")
    parser.add_argument("--complete", action="store_true")
    parser.add_argument("--ignore-identical-ids", action="store_true")
    args = parser.parse_args()
    cutoffs = sorted({int(k) for k in args.k.split(",")})
    result = evaluate(read_qrels(args.qrels), read_run(args.run), cutoffs, args.complete, args.ignore_identical_ids)
    json.dump(result, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
