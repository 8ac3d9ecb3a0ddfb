// Fuzz target: the TREC/BEIR readers of src/eval/trec.h. The input is read as qrels in each format (detected, TREC,
// BEIR TSV) and as a run. Every error must name the input (file and line).
#include <cstdint>
#include <sstream>
#include <string>

#include "eval/trec.h"
#include "fuzz_util.h"

namespace {

constexpr const char* NAME = "fuzz-trec-input";
using oe::eval::QrelsFormat;

void read_qrels(const std::string& text, QrelsFormat format) {
  std::istringstream in(text);
  oe::eval::QrelsReadInfo info;
  const oe::eval::Qrels qrels = oe::eval::parse_qrels(in, NAME, format, &info);
  int64_t judged = 0;
  for (const auto& [qid, docs] : qrels) judged += static_cast<int64_t>(docs.size());
  if (qrels.empty() || judged != info.n_judgments || info.format == QrelsFormat::Auto) {
    oe::fuzz::finding("parse_qrels", "the read info disagrees with the judgments");
  }
}

void read_run(const std::string& text) {
  std::istringstream in(text);
  const oe::eval::Run run = oe::eval::parse_run(in, NAME);
  if (run.empty()) oe::fuzz::finding("parse_run", "an empty run was accepted");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(oe::fuzz::as_text(data, size));
  for (const QrelsFormat format : {QrelsFormat::Auto, QrelsFormat::Trec, QrelsFormat::BeirTsv}) {
    oe::fuzz::expect_clean([&] { read_qrels(text, format); }, NAME);
  }
  oe::fuzz::expect_clean([&] { read_run(text); }, NAME);
  return 0;
}
