// The bounded reader: regular files only (nothing blocks on a FIFO or reads a device forever), a cap checked from
// the size and while reading, lines capped one by one, a byte-order mark dropped.
#include "io/read.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include "core/error.h"
#include "io/io_test_util.h"

namespace oe::io {
namespace {

using testing::TempDir;

template <typename E, typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(BoundedRead, OnlyRegularFiles) {
  TempDir dir;
  EXPECT_NE(error_of<IoError>([&] { check_regular_file("/dev/zero"); }).find("is a character device"),
            std::string::npos);
  EXPECT_NE(error_of<IoError>([&] { check_regular_file(dir.path()); }).find("is a folder"), std::string::npos);
  ASSERT_EQ(::mkfifo((dir / "pipe").c_str(), 0600), 0);
  EXPECT_NE(error_of<IoError>([&] { read_file(dir / "pipe", JSON_FILE_CAP); }).find("is a FIFO"), std::string::npos);
  EXPECT_NE(error_of<IoError>([&] { LineReader(dir / "pipe", JSON_FILE_CAP); }).find("is a FIFO"), std::string::npos);
  EXPECT_NE(error_of<IoError>([&] { check_regular_file(dir / "missing"); }).find("cannot open"), std::string::npos);
}

TEST(BoundedRead, TheCapIsCheckedFromTheSize) {
  TempDir dir;
  testing::write_bytes(dir / "f", std::string(5000, 'x'));
  EXPECT_EQ(read_file(dir / "f", ReadCap{5000, "test file"}).size(), 5000u);
  const std::string m = error_of<InvalidInput>([&] { read_file(dir / "f", ReadCap{4999, "test file", "--max-x"}); });
  EXPECT_NE(m.find("the test file is larger than"), std::string::npos) << m;
  EXPECT_NE(m.find("--max-x raises the limit"), std::string::npos) << m;
}

TEST(BoundedRead, PaddedReadsEndInZerosAndCapTheFileAlone) {
  TempDir dir;
  testing::write_bytes(dir / "f", std::string(5000, 'x'));
  const std::string padded = read_file_padded(dir / "f", ReadCap{5000, "test file"}, 64);
  ASSERT_EQ(padded.size(), 5064u);
  EXPECT_EQ(padded.substr(0, 5000), std::string(5000, 'x'));
  EXPECT_EQ(padded.substr(5000), std::string(64, '\0'));
  EXPECT_THROW(read_file_padded(dir / "f", ReadCap{4999, "test file"}, 64), InvalidInput);
}

TEST(BoundedRead, LinesAreCappedAndTheByteOrderMarkDropped) {
  TempDir dir;
  testing::write_bytes(dir / "f", "\xEF\xBB\xBFq1 0 d1 1\r\n\nshort\n" + std::string(3 * MiB, 'y') + "\nafter");
  LineReader in(dir / "f", ReadCap{MiB, "line"});
  std::string line;
  ASSERT_TRUE(in.next(line));
  EXPECT_EQ(line, "q1 0 d1 1\r");
  ASSERT_TRUE(in.next(line));
  EXPECT_EQ(line, "");
  ASSERT_TRUE(in.next(line));
  EXPECT_EQ(line, "short");
  const std::string m = error_of<InvalidInput>([&] { in.next(line); });
  EXPECT_NE(m.find("line 4: the line is longer than 1 MiB"), std::string::npos) << m;
  EXPECT_LE(line.size(), MiB);  // never more than the cap was held
}

}  // namespace
}  // namespace oe::io
