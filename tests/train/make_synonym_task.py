#!/usr/bin/env python3
"""Writes a generated retrieval task in the BEIR layout that a model can only solve by learning word pairs.

Each of N concepts has a document word and an unrelated query word (pseudo-words from syllables, so they share no
tokens). A passage names three concepts by their document words; a query names two of its passage's concepts by
their query words. Train queries ask about the first passages, test queries about the rest, which combine the same
concepts differently: what training teaches (which query word means which document word) is what the held-out
queries need, and an untrained model, seeing no shared tokens, ranks them near chance.

usage: make_synonym_task.py OUT_DIR [--seed S] [--concepts N] [--passages P] [--train-passages T]
"""
import argparse
import json
import os
import random


def words(rng, n, taken):
    syl = ["ba", "ko", "ti", "lu", "me", "ra", "so", "vi", "ne", "du", "pa", "gi", "fo", "ze", "mu", "ha", "ro", "ki"]
    out = []
    while len(out) < n:
        w = "".join(rng.choice(syl) for _ in range(3))
        if w not in taken:
            taken.add(w)
            out.append(w)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--concepts", type=int, default=24)
    ap.add_argument("--passages", type=int, default=96)
    ap.add_argument("--train-passages", type=int, default=64)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    taken = set()
    doc_w = words(rng, a.concepts, taken)
    qry_w = words(rng, a.concepts, taken)
    os.makedirs(os.path.join(a.out, "qrels"), exist_ok=True)
    passages = [rng.sample(range(a.concepts), 3) for _ in range(a.passages)]
    with open(os.path.join(a.out, "corpus.jsonl"), "w") as f:
        for i, c in enumerate(passages):
            f.write(json.dumps({"_id": f"p{i}", "text": f"the {doc_w[c[0]]} and the {doc_w[c[1]]} by the {doc_w[c[2]]}"}) + "\n")
    qrels = {"train": [], "test": []}
    with open(os.path.join(a.out, "queries.jsonl"), "w") as f:
        for i, c in enumerate(passages):
            split = "train" if i < a.train_passages else "test"
            for j, (x, y) in enumerate([(0, 1), (1, 2), (0, 2)]):
                qid = f"q{i}_{j}"
                f.write(json.dumps({"_id": qid, "text": f"{qry_w[c[x]]} with {qry_w[c[y]]}"}) + "\n")
                qrels[split].append((qid, f"p{i}"))
    for split, rows in qrels.items():
        with open(os.path.join(a.out, "qrels", f"{split}.tsv"), "w") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            for q, p in rows:
                f.write(f"{q}\t{p}\t1\n")


if __name__ == "__main__":
    main()
