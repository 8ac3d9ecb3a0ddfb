#!/usr/bin/env python3
"""Self-test of trec_oracle.py against values worked out by hand, so that the oracle of eval_oracle_test is itself
checked. Run: python3 tests/eval/test_trec_oracle.py"""

import math
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trec_oracle  # noqa: E402


def evaluate(qrels_text, run_text, cutoffs, complete=False, ignore_identical_ids=False):
    with tempfile.TemporaryDirectory() as tmp:
        qrels_path, run_path = os.path.join(tmp, "qrels"), os.path.join(tmp, "run")
        with open(qrels_path, "w", encoding="utf-8") as f:
            f.write(qrels_text)
        with open(run_path, "w", encoding="utf-8") as f:
            f.write(run_text)
        return trec_oracle.evaluate(trec_oracle.read_qrels(qrels_path), trec_oracle.read_run(run_path), cutoffs,
                                    complete, ignore_identical_ids)


class OracleByHand(unittest.TestCase):
    def test_three_documents_with_a_tie(self):
        # Judged: d1 = 2, d2 = 0, d3 = 1, d4 = 3 (not retrieved). Retrieved d1 0.9, d2 0.8, d3 0.8: the tie puts d3
        # (the larger id) before d2, so the gains by rank are 2, 1, 0.
        r = evaluate("q 0 d1 2\nq 0 d2 0\nq 0 d3 1\nq 0 d4 3\n",
                     "q Q0 d1 1 0.9 t\nq Q0 d2 2 0.8 t\nq Q0 d3 3 0.8 t\n", [1, 3])["per_query"]["q"]
        ideal3 = 3 + 2 / math.log2(3) + 1 / 2
        self.assertAlmostEqual(r["ndcg_cut_1"], 2 / 3, places=15)
        self.assertAlmostEqual(r["ndcg_cut_3"], (2 + 1 / math.log2(3)) / ideal3, places=15)
        self.assertAlmostEqual(r["recall_3"], 2 / 3, places=15)
        self.assertAlmostEqual(r["map_cut_3"], (1 / 1 + 2 / 2) / 3, places=15)
        self.assertEqual(r["mrr_cut_1"], 1.0)

    def test_float32_tie_goes_to_the_larger_id(self):
        # 1.00000001 rounds to the float 1.0: the scores tie and "b" ranks first, so the relevant "a" is second.
        r = evaluate("q 0 a 1\n", "q Q0 a 1 1.00000001 t\nq Q0 b 2 1.0 t\n", [1, 2])["per_query"]["q"]
        self.assertEqual(r["mrr_cut_1"], 0.0)
        self.assertEqual(r["mrr_cut_2"], 0.5)
        self.assertAlmostEqual(r["ndcg_cut_2"], 1 / math.log2(3), places=15)

    def test_queries_counted(self):
        qrels = "q1 0 a 1\nq2 0 b 1\nq3 0 c 0\n"
        run = "q1 Q0 a 1 1 t\nq3 Q0 c 1 1 t\nq9 Q0 a 1 1 t\n"
        r = evaluate(qrels, run, [10])
        self.assertEqual(r["queries"], 2)  # q1 and q3 (judged only with 0); q2 has no results, q9 no judgments
        self.assertEqual(r["metrics"]["ndcg_cut_10"], 0.5)
        self.assertEqual(r["run_only"], ["q9"])
        self.assertEqual(r["judged_only"], ["q2"])
        r = evaluate(qrels, run, [10], complete=True)
        self.assertEqual(r["queries"], 3)
        self.assertAlmostEqual(r["metrics"]["recall_10"], 1 / 3, places=15)

    def test_map_divides_by_all_relevant(self):
        # Four relevant documents, two of them at ranks 1 and 3 within k = 3: AP@3 = (1/1 + 2/3) / 4.
        r = evaluate("q 0 a 1\nq 0 c 1\nq 0 x 1\nq 0 y 1\n", "q Q0 a 1 3 t\nq Q0 b 2 2 t\nq Q0 c 3 1 t\n", [3])
        self.assertAlmostEqual(r["per_query"]["q"]["map_cut_3"], (1 + 2 / 3) / 4, places=15)

    def test_negative_judgments_are_not_relevant(self):
        r = evaluate("q 0 a -1\nq 0 b 1\n", "q Q0 a 1 2 t\nq Q0 b 2 1 t\n", [1, 2])["per_query"]["q"]
        self.assertEqual(r["ndcg_cut_1"], 0.0)
        self.assertAlmostEqual(r["ndcg_cut_2"], 1 / math.log2(3), places=15)
        self.assertEqual(r["recall_2"], 1.0)


if __name__ == "__main__":
    unittest.main()
