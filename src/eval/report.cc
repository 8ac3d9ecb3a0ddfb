#include "eval/report.h"

#include <nlohmann/json.hpp>

#include <fmt/format.h>

namespace oe::eval {
namespace {

nlohmann::ordered_json measures_json(const EvalResult& r, const MeasureTable& values) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (Measure m : ALL_MEASURES)
    for (size_t c = 0; c < r.cutoffs.size(); ++c)
      j[measure_name(m, r.cutoffs[c])] = values[static_cast<size_t>(m)][c];
  return j;
}

}  // namespace

std::string to_json(const EvalResult& result, bool per_query) {
  nlohmann::ordered_json j;
  j["queries"] = result.n_queries;
  j["metrics"] = measures_json(result, result.means);
  if (per_query) {
    nlohmann::ordered_json queries = nlohmann::ordered_json::object();
    for (const auto& q : result.per_query) queries[q.qid] = measures_json(result, q.values);
    j["per_query"] = std::move(queries);
  }
  // Replace invalid UTF-8 in ids instead of failing: a run may carry ids in any byte encoding.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string to_table(const EvalResult& result, bool per_query) {
  std::string out;
  if (per_query) {
    // trec_eval -q layout: one line per measure and query, the query's lines together.
    for (const auto& q : result.per_query)
      for (Measure m : ALL_MEASURES)
        for (size_t c = 0; c < result.cutoffs.size(); ++c)
          out += fmt::format("{:<22}\t{}\t{:.4f}\n", measure_name(m, result.cutoffs[c]), q.qid, q.value(m, c));
    out += "\n";
  }
  out += fmt::format("queries {}\n", result.n_queries);
  out += fmt::format("{:<10}", "");
  for (int k : result.cutoffs) out += fmt::format("{:>9}", fmt::format("@{}", k));
  out += "\n";
  for (Measure m : ALL_MEASURES) {
    out += fmt::format("{:<10}", measure_stem(m));
    for (size_t c = 0; c < result.cutoffs.size(); ++c) out += fmt::format("{:>9.4f}", result.mean(m, c));
    out += "\n";
  }
  return out;
}

}  // namespace oe::eval
