#include "eval/trec.h"

#include "io/read.h"

#include <algorithm>
#include <charconv>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <numeric>
#include <string_view>

#include <fmt/format.h>

#include "core/error.h"

namespace oe::eval {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// TREC files: fields are runs of non-whitespace (trec_eval's isspace splitting).
std::vector<std::string_view> split_whitespace(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_space(line[i])) ++i;
    size_t start = i;
    while (i < line.size() && !is_space(line[i])) ++i;
    if (i > start) fields.push_back(line.substr(start, i - start));
  }
  return fields;
}

// BEIR TSV: tab separated, so an id may hold spaces.
std::vector<std::string_view> split_tabs(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t start = 0;
  for (;;) {
    size_t tab = line.find('\t', start);
    fields.push_back(line.substr(start, tab == std::string_view::npos ? std::string_view::npos : tab - start));
    if (tab == std::string_view::npos) break;
    start = tab + 1;
  }
  return fields;
}

bool parse_int(std::string_view s, int& out) {
  s = trim(s);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

// The score as trec_eval and pytrec_eval hold it: the text read as a double, then rounded to float.
bool parse_score(std::string_view s, float& out) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  double d = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (ec == std::errc::result_out_of_range) {
    // A magnitude beyond double is infinite (or zero) as strtod reads it; from_chars only reports the range.
    d = std::strtod(std::string(s).c_str(), nullptr);
  } else if (ec != std::errc() || end != s.data() + s.size()) {
    return false;
  }
  if (std::isnan(d)) return false;
  out = static_cast<float>(d);
  return true;
}

// Reads `in` line by line, calling f(line_number, content) for every line that is neither blank nor a comment.
template <typename F>
void for_each_content_line(std::istream& in, const std::string& name, F&& f) {
  std::string line;
  int64_t number = 0;
  // Lines of run and qrels files are short; a longer one is not such a file (and is never read whole).
  const io::ReadCap cap{io::MiB, "line"};
  while (io::read_line(in, line, cap, name, number + 1)) {
    if (++number == 1) io::strip_utf8_bom(line);
    if (line.find('\0') != std::string::npos) throw InvalidInput(fmt::format("{}:{}: holds a NUL byte", name, number));
    std::string_view content = trim(line);
    if (content.empty() || content.front() == '#') continue;
    if (!line.empty() && line.back() == '\r') line.pop_back();  // CRLF files: the tab split keeps the rest as is
    f(number, std::string_view(line));
  }
  if (in.bad()) throw IoError(fmt::format("{}: read failed", name));
}

std::ifstream open_input(const std::filesystem::path& path) {
  io::check_regular_file(path);  // a folder, a FIFO or /dev/zero is refused before any read
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
  return in;
}

bool looks_like_beir(std::string_view first_line) { return split_tabs(trim(first_line)).size() == 3; }

}  // namespace

Qrels parse_qrels(std::istream& in, const std::string& name, QrelsFormat format, QrelsReadInfo* info) {
  Qrels qrels;
  std::map<std::string, std::map<std::string, int64_t>> first_line;  // for duplicate messages
  QrelsReadInfo read;
  bool first = true;
  for_each_content_line(in, name, [&](int64_t number, std::string_view line) {
    if (first && format == QrelsFormat::Auto) format = looks_like_beir(line) ? QrelsFormat::BeirTsv : QrelsFormat::Trec;
    const bool beir = format == QrelsFormat::BeirTsv;
    auto fields = beir ? split_tabs(line) : split_whitespace(line);
    if (fields.size() != (beir ? 3u : 4u)) {
      throw InvalidInput(fmt::format("{}:{}: expected {} fields ({}), found {}", name, number, beir ? 3 : 4,
                                     beir ? "tab-separated query-id, corpus-id, score" : "qid iter docid rel",
                                     fields.size()));
    }
    std::string_view qid = fields[0], docid = beir ? fields[1] : fields[2], rel_text = beir ? fields[2] : fields[3];
    int rel = 0;
    if (!parse_int(rel_text, rel)) {
      // BEIR's TSV starts with a header (`query-id corpus-id score`); only the first line may be one.
      if (beir && first) {
        first = false;
        return;
      }
      throw InvalidInput(fmt::format("{}:{}: relevance '{}' is not an integer", name, number, rel_text));
    }
    first = false;
    if (qid.empty() || docid.empty())
      throw InvalidInput(fmt::format("{}:{}: empty {} id", name, number, qid.empty() ? "query" : "document"));
    auto& judged = qrels[std::string(qid)];
    auto& lines = first_line[std::string(qid)];
    auto [it, inserted] = judged.try_emplace(std::string(docid), rel);
    if (!inserted) {
      if (!beir) {
        throw InvalidInput(fmt::format(
            "{}:{}: document '{}' is judged twice for query '{}' (first on line {}); trec_eval refuses duplicate "
            "judgments",
            name, number, docid, qid, lines[it->first]));
      }
      it->second = rel;  // BEIR's loader keeps the last judgment
      ++read.n_replaced;
      return;
    }
    lines[it->first] = number;
    ++read.n_judgments;
  });
  if (qrels.empty()) throw InvalidInput(fmt::format("{}: no judgments (the file is empty or holds only comments)", name));
  read.format = format;
  if (info) *info = read;
  return qrels;
}

Qrels read_qrels(const std::filesystem::path& path, QrelsFormat format, QrelsReadInfo* info) {
  auto in = open_input(path);
  return parse_qrels(in, path.string(), format, info);
}

Run parse_run(std::istream& in, const std::string& name) {
  Run run;
  std::map<std::string, std::vector<int64_t>> lines;  // parallel to run: each entry's line, for duplicate messages
  // Runs list a query's documents together: the last query's lists are reused without a lookup.
  std::string last_qid;
  std::vector<ScoredDoc>* docs = nullptr;
  std::vector<int64_t>* doc_lines = nullptr;
  for_each_content_line(in, name, [&](int64_t number, std::string_view line) {
    auto fields = split_whitespace(line);
    if (fields.size() < 6) {
      throw InvalidInput(fmt::format("{}:{}: expected 6 fields (qid Q0 docid rank score tag), found {}", name, number,
                                     fields.size()));
    }
    float score = 0;
    if (!parse_score(fields[4], score))
      throw InvalidInput(fmt::format("{}:{}: score '{}' is not a number", name, number, fields[4]));
    if (!docs || fields[0] != last_qid) {
      last_qid = std::string(fields[0]);
      docs = &run[last_qid];
      doc_lines = &lines[last_qid];
    }
    docs->push_back({std::string(fields[2]), score});
    doc_lines->push_back(number);
  });
  if (run.empty()) throw InvalidInput(fmt::format("{}: no results (the file is empty or holds only comments)", name));

  // trec_eval stops with "duplicate docs" when a query lists a document twice: which score would count is undefined.
  for (const auto& [qid, list] : run) {
    const std::vector<ScoredDoc>& entries = list;  // a structured binding cannot be captured by clang 14's lambdas
    std::vector<size_t> order(entries.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      int c = entries[a].docid.compare(entries[b].docid);
      return c != 0 ? c < 0 : a < b;
    });
    for (size_t i = 1; i < order.size(); ++i) {
      const auto& a = entries[order[i - 1]];
      const auto& b = entries[order[i]];
      if (a.docid == b.docid) {
        const auto& l = lines[qid];
        throw InvalidInput(fmt::format(
            "{}:{}: document '{}' appears twice for query '{}' (first on line {}); trec_eval refuses such runs",
            name, l[order[i]], b.docid, qid, l[order[i - 1]]));
      }
    }
  }
  return run;
}

Run read_run(const std::filesystem::path& path) {
  auto in = open_input(path);
  return parse_run(in, path.string());
}

}  // namespace oe::eval
