#include "io/json.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "io/io_test_util.h"

namespace oe::io {
namespace {

using testing::TempDir;

TEST(Json, RoundTrip) {
  TempDir dir;
  const nlohmann::json j = {{"hidden_size", 2048}, {"name", "qwen2_5_omni"}, {"rope", {16, 24, 24}}, {"x", 0.5}};
  write_json_file(dir / "c.json", j);
  EXPECT_FALSE(std::filesystem::exists(dir / "c.json.tmp"));
  EXPECT_EQ(read_json_file(dir / "c.json"), j);
  write_text_file(dir / "t.txt", "line 1\nline 2");
  EXPECT_EQ(read_text_file(dir / "t.txt"), "line 1\nline 2");
}

TEST(Json, ParseErrorNamesFileLineAndColumn) {
  TempDir dir;
  // The bad token "tru" is on line 3 (nlohmann detects it at the ',' after it, column 11).
  testing::write_bytes(dir / "config.json", "{\n  \"a\": 1,\n  \"b\": tru,\n  \"c\": 2\n}\n");
  try {
    read_json_file(dir / "config.json");
    FAIL() << "no error";
  } catch (const InvalidInput& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find((dir / "config.json").string() + ":3:"), std::string::npos) << msg;
    EXPECT_NE(msg.find("invalid JSON"), std::string::npos) << msg;
  }
  testing::write_bytes(dir / "empty.json", "");
  EXPECT_THROW(read_json_file(dir / "empty.json"), InvalidInput);
}

TEST(Json, NumberPastDoubleRangeIsInvalidInput) {
  // Found by fuzz/config.cc: nlohmann throws out_of_range, not parse_error, for a number it cannot hold.
  TempDir dir;
  testing::write_bytes(dir / "config.json", R"({"hidden_size": 1E1648})");
  try {
    read_json_file(dir / "config.json");
    FAIL() << "no error";
  } catch (const InvalidInput& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find((dir / "config.json").string() + ": invalid JSON"), std::string::npos) << msg;
    EXPECT_NE(msg.find("1E1648"), std::string::npos) << msg;
  }
}

TEST(Json, UnreadableIsIoError) {
  TempDir dir;
  try {
    read_json_file(dir / "absent.json");
    FAIL() << "no error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("absent.json"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_text_file(dir.path()), IoError);
  EXPECT_THROW(write_text_file(dir / "no" / "such" / "dir.txt", "x"), IoError);
}

}  // namespace
}  // namespace oe::io
