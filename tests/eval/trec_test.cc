// Reading qrels and runs: the formats trec_eval and BEIR accept, and errors that name the file, the line and the
// problem.
#include <sstream>

#include <gtest/gtest.h>

#include "common/temp_dir.h"
#include "core/error.h"
#include "eval/trec.h"
#include "eval_test_util.h"

namespace oe::eval {
namespace {

using testing::TempDir;
using testing::write_file;

Qrels qrels_of(const std::string& text, QrelsFormat format = QrelsFormat::Auto, QrelsReadInfo* info = nullptr) {
  std::istringstream in(text);
  return parse_qrels(in, "qrels", format, info);
}

Run run_of(const std::string& text) {
  std::istringstream in(text);
  return parse_run(in, "run");
}

// The message of the InvalidInput that f throws ("" when it throws none).
template <typename F>
std::string invalid_input_message(F&& f) {
  try {
    f();
  } catch (const InvalidInput& e) {
    return e.what();
  }
  return "";
}

TEST(Qrels, TrecFormatWithCommentsBlankLinesAndGrades) {
  QrelsReadInfo info;
  auto q = qrels_of("# judgments\nq1 0 d1 2\n\nq1 0 d2 0\r\nq2\t0\td3\t-1\n  q2 1 d4 +3\n", QrelsFormat::Auto, &info);
  EXPECT_EQ(info.format, QrelsFormat::Trec);
  EXPECT_EQ(info.n_judgments, 4);
  Qrels expected{{"q1", {{"d1", 2}, {"d2", 0}}}, {"q2", {{"d3", -1}, {"d4", 3}}}};
  EXPECT_EQ(q, expected);
}

TEST(Qrels, BeirTsvSkipsItsHeaderAndKeepsTheLastJudgment) {
  QrelsReadInfo info;
  auto q = qrels_of("query-id\tcorpus-id\tscore\nq1\tdoc one\t1\nq1\td2\t0\nq1\tdoc one\t2\n", QrelsFormat::Auto,
                    &info);
  EXPECT_EQ(info.format, QrelsFormat::BeirTsv);
  EXPECT_EQ(info.n_replaced, 1);
  Qrels expected{{"q1", {{"doc one", 2}, {"d2", 0}}}};  // tab separated: an id may hold a space
  EXPECT_EQ(q, expected);
}

TEST(Qrels, BeirTsvWithoutHeader) {
  auto q = qrels_of("q1\td1\t1\n");
  Qrels expected{{"q1", {{"d1", 1}}}};
  EXPECT_EQ(q, expected);
}

TEST(Qrels, WrongFieldCountNamesFileAndLine) {
  TempDir tmp;
  auto path = write_file(tmp / "qrels.txt", "q1 0 d1 1\nq1 0 d2\n");
  auto msg = invalid_input_message([&] { read_qrels(path); });
  EXPECT_NE(msg.find((tmp / "qrels.txt").string() + ":2: expected 4 fields"), std::string::npos) << msg;
  EXPECT_NE(msg.find("found 3"), std::string::npos) << msg;
}

TEST(Qrels, RunFileGivenAsQrelsIsRefused) {
  auto msg = invalid_input_message([] { qrels_of("q1 Q0 d1 1 0.5 run\n"); });
  EXPECT_NE(msg.find("qrels:1: expected 4 fields"), std::string::npos) << msg;
}

TEST(Qrels, RelevanceMustBeAnInteger) {
  auto msg = invalid_input_message([] { qrels_of("q1 0 d1 1\nq1 0 d2 high\n"); });
  EXPECT_NE(msg.find("qrels:2: relevance 'high' is not an integer"), std::string::npos) << msg;
  msg = invalid_input_message([] { qrels_of("q1 0 d1 1.5\n"); });
  EXPECT_NE(msg.find("qrels:1: relevance '1.5' is not an integer"), std::string::npos) << msg;
  // In a BEIR file only the first line may be a header.
  msg = invalid_input_message([] { qrels_of("query-id\tcorpus-id\tscore\nq1\td1\tyes\n"); });
  EXPECT_NE(msg.find("qrels:2: relevance 'yes'"), std::string::npos) << msg;
}

TEST(Qrels, DuplicateTrecJudgmentNamesBothLines) {
  auto msg = invalid_input_message([] { qrels_of("q1 0 d1 1\nq1 0 d2 0\nq1 0 d1 2\n"); });
  EXPECT_NE(msg.find("qrels:3: document 'd1' is judged twice for query 'q1' (first on line 1)"), std::string::npos)
      << msg;
}

TEST(Qrels, EmptyFileIsAnError) {
  TempDir tmp;
  auto path = write_file(tmp / "empty.qrels", "");
  auto msg = invalid_input_message([&] { read_qrels(path); });
  EXPECT_NE(msg.find("empty.qrels: no judgments"), std::string::npos) << msg;
  msg = invalid_input_message([] { qrels_of("# only a comment\n\n"); });
  EXPECT_NE(msg.find("no judgments"), std::string::npos) << msg;
}

TEST(Qrels, MissingFileIsAnIoErrorNamingIt) {
  TempDir tmp;
  try {
    read_qrels(tmp / "absent.qrels");
    FAIL() << "no error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("absent.qrels: cannot open"), std::string::npos) << e.what();
  }
}

TEST(Run, ScoresAreFloat32AndRankAndTagAreIgnored) {
  auto run = run_of("q1 Q0 d1 7 1.00000001 tag\n# comment\nq1 Q0 d2 1 0.5 tag extra fields\nq2 Q0 d1 1 -2e1 t\n");
  ASSERT_EQ(run.size(), 2u);
  ASSERT_EQ(run["q1"].size(), 2u);
  EXPECT_EQ(run["q1"][0].docid, "d1");
  EXPECT_EQ(run["q1"][0].score, 1.0f);  // 1.00000001 is 1.0 as a float: it ties with 1.0
  EXPECT_EQ(run["q1"][1].docid, "d2");  // file order is kept; ranking happens in the metrics
  EXPECT_EQ(run["q2"][0].score, -20.0f);
}

TEST(Run, WrongFieldCountNamesFileAndLine) {
  TempDir tmp;
  auto path = write_file(tmp / "run.txt", "q1 Q0 d1 1 0.9 t\n\nq1 Q0 d2 2 0.8\n");
  auto msg = invalid_input_message([&] { read_run(path); });
  EXPECT_NE(msg.find((tmp / "run.txt").string() + ":3: expected 6 fields (qid Q0 docid rank score tag), found 5"),
            std::string::npos)
      << msg;
}

TEST(Run, NonNumericScoreIsAnError) {
  for (const char* score : {"high", "0.5x", "nan", ""}) {
    std::string line = std::string("q1 Q0 d1 1 ") + score + " t x\n";
    auto msg = invalid_input_message([&] { run_of(line); });
    EXPECT_NE(msg.find("run:1:"), std::string::npos) << score << ": " << msg;
    EXPECT_NE(msg.find("is not a number"), std::string::npos) << score << ": " << msg;
  }
}

TEST(Run, DuplicateDocumentNamesBothLines) {
  auto msg = invalid_input_message([] { run_of("q1 Q0 a 1 3 t\nq2 Q0 a 1 3 t\nq1 Q0 b 2 2 t\nq1 Q0 a 3 1 t\n"); });
  EXPECT_NE(msg.find("run:4: document 'a' appears twice for query 'q1' (first on line 1)"), std::string::npos) << msg;
}

TEST(Run, EmptyFileIsAnError) {
  auto msg = invalid_input_message([] { run_of(""); });
  EXPECT_NE(msg.find("run: no results"), std::string::npos) << msg;
}

}  // namespace
}  // namespace oe::eval
