// Relevance judgments (qrels) and ranked runs in the formats trec_eval and BEIR read.
//
// Qrels, TREC format: one judgment per line, `qid iter docid rel`, whitespace separated (iter is ignored, as
// trec_eval ignores it). BEIR format (`qrels/test.tsv`): tab separated `query-id corpus-id score`, with a header
// line. Run, TREC format: `qid Q0 docid rank score tag`; Q0, rank and tag are ignored (trec_eval ranks by score
// only) and, as in trec_eval, anything after the tag is ignored too.
//
// Errors name the file and line: a wrong field count, a score that is not a number, a relevance that is not an
// integer, an empty file. Blank lines and lines starting with '#' are skipped in both files.
//
// Duplicates: trec_eval refuses to evaluate a query whose run lists the same document twice, and one whose TREC
// qrels judge the same document twice ("duplicate docs"); here both are errors naming the two lines. BEIR's loader
// keeps the last judgment of a (query, document) pair of its TSV, and so do we for that format, counting them in
// QrelsReadInfo::n_replaced so the caller can warn.
#pragma once

#include <cstdint>
#include <filesystem>
#include <istream>
#include <map>
#include <string>
#include <vector>

namespace oe::eval {

// qid -> docid -> graded relevance (the integer of the file; negative values are kept as read).
using Qrels = std::map<std::string, std::map<std::string, int>>;

struct ScoredDoc {
  std::string docid;
  float score = 0;  // trec_eval holds run scores as 32-bit floats (its TEXT_RESULTS::sim); so do we
};
// qid -> the run's documents for that query, in file order (ranking happens in the metrics).
using Run = std::map<std::string, std::vector<ScoredDoc>>;

enum class QrelsFormat {
  Auto,     // BEIR when the first content line has three tab-separated fields, else TREC
  Trec,     // qid iter docid rel
  BeirTsv,  // query-id \t corpus-id \t score, header line first
};

struct QrelsReadInfo {
  QrelsFormat format = QrelsFormat::Auto;  // the format actually read
  int64_t n_judgments = 0;                 // lines read (after replacements: the distinct pairs)
  int64_t n_replaced = 0;                  // BEIR TSV only: later lines that replaced an earlier judgment
};

// `name` is what error messages call the input (the path, for files).
Qrels parse_qrels(std::istream& in, const std::string& name, QrelsFormat format = QrelsFormat::Auto,
                  QrelsReadInfo* info = nullptr);
Qrels read_qrels(const std::filesystem::path& path, QrelsFormat format = QrelsFormat::Auto,
                 QrelsReadInfo* info = nullptr);

Run parse_run(std::istream& in, const std::string& name);
Run read_run(const std::filesystem::path& path);

}  // namespace oe::eval
