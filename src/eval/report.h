// Evaluation results as JSON (for programs) and as a plain table (for people).
#pragma once

#include <string>

#include "eval/metrics.h"

namespace oe::eval {

// {"queries": n, "metrics": {"ndcg_cut_1": ..., ...}, "per_query": {"qid": {...}, ...}} with the keys in that order,
// measures in ALL_MEASURES order and each at every cutoff ascending; "per_query" only when asked for. Numbers are
// printed with enough digits to read back the exact double.
std::string to_json(const EvalResult& result, bool per_query);

// The means as a grid, one row per measure and one column per cutoff, 4 decimals as trec_eval prints. With
// per_query, trec_eval -q style lines (measure, query, value) come first.
std::string to_table(const EvalResult& result, bool per_query);

}  // namespace oe::eval
