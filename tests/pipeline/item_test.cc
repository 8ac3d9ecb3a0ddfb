// The one item format: JSON lines of `embed --input` (text as given, any id echoed, an empty document allowed) and
// catalogued lines of manifests and BEIR files (id required and unique, title joined, text stripped).
#include "pipeline/item.h"

#include <gtest/gtest.h>

#include "common/files.h"
#include "common/temp_dir.h"
#include "core/error.h"

namespace oe::pipeline {
namespace {

using nlohmann::json;

std::string error_of(const json& entry, const ItemFormat& f) {
  try {
    parse_item(entry, f);
  } catch (const InvalidInput& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(EmbedItem, EmbedLinesKeepTheTextAndEchoTheId) {
  ItemFormat f;
  f.base = "/data";
  EmbedItem it = parse_item(json::parse(R"({"id": {"k": 7}, "role": "query", "text": "  a cat ",
                                             "image": ["x.png", "/abs/y.png"], "video": "v.mp4"})"),
                            f);
  EXPECT_EQ(it.id, json::parse(R"({"k": 7})"));
  EXPECT_EQ(it.role, text::Role::Query);
  EXPECT_EQ(it.text, "  a cat ");
  ASSERT_EQ(it.images.size(), 2u);
  EXPECT_EQ(it.images[0], "/data/x.png");
  EXPECT_EQ(it.images[1], "/abs/y.png");
  EXPECT_EQ(it.videos.at(0), "/data/v.mp4");
  EXPECT_EQ(it.modality(), Modality::Mixed);
  // A document with nothing is an empty document; a query with nothing is refused.
  EXPECT_EQ(parse_item(json::parse("{}"), f).modality(), Modality::Text);
  EXPECT_EQ(error_of(json::parse(R"({"role": "query"})"), f), "a query needs \"text\", \"image\", \"audio\" or \"video\"");
  EXPECT_EQ(error_of(json::parse(R"({"text": 3})"), f), "\"text\" must be a string");
  EXPECT_EQ(error_of(json::parse(R"({"image": 3})"), f), "\"image\" must be a file path or a list of file paths");
  // null is the same as an absent key, in every format.
  EXPECT_EQ(parse_item(json::parse(R"({"text": null, "image": null})"), f).modality(), Modality::Text);
  EXPECT_EQ(error_of(json::parse(R"({"role": "query", "text": null})"), f),
            "a query needs \"text\", \"image\", \"audio\" or \"video\"");
  EXPECT_EQ(error_of(json::parse("[1]"), f), "expected a JSON object");
}

TEST(EmbedItem, CatalogueLinesNeedAnIdAndJoinTheTitle) {
  ItemFormat f;
  f.base = "/corpus";
  f.role = text::Role::Document;
  f.catalogued = true;
  EmbedItem it = parse_item(json::parse(R"({"_id": 12, "role": "query", "title": "Cats", "text": " sketches  ",
                                             "audio": null})"),
                            f);
  EXPECT_EQ(it.id_string(), "12");
  EXPECT_EQ(it.role, text::Role::Document);  // the format's role, not the line's
  EXPECT_EQ(it.text, "Cats  sketches");
  EXPECT_TRUE(it.audios.empty());
  EXPECT_EQ(parse_item(json::parse(R"({"id": "a", "text": ""})"), f).modality(), Modality::Text);
  EXPECT_EQ(parse_item(json::parse(R"({"id": "a", "text": "", "audio": "t.wav"})"), f).modality(), Modality::Audio);
  EXPECT_EQ(error_of(json::parse(R"({"text": "x"})"), f), "every entry needs an \"id\" (a string or an integer)");
  EXPECT_EQ(error_of(json::parse(R"({"id": ""})"), f), "\"id\" is empty");
  EXPECT_EQ(error_of(json::parse(R"({"id": "a"})"), f), "the entry has no \"text\", \"image\", \"audio\" or \"video\"");
  // "text": null is no text, as in `embed --input` (before, it was indexed as an empty document).
  EXPECT_EQ(error_of(json::parse(R"({"id": "a", "text": null})"), f),
            "the entry has no \"text\", \"image\", \"audio\" or \"video\"");
  EXPECT_EQ(error_of(json::parse(R"({"id": "a", "title": 1})"), f), "\"title\" must be a string");
}

TEST(EmbedItem, ReadItemLinesNumbersLinesAndSaysWhatIsWrong) {
  testing::TempDir tmp;
  const auto file = testing::write_file(tmp / "m.jsonl", "{\"id\": \"a\", \"text\": \"x\"}\n\n  \n{oops\n"
                                                         "{\"id\": \"a\", \"text\": \"y\"}\n{\"id\": 2, \"text\": \"z\"}\n");
  ItemFormat f;
  f.catalogued = true;
  std::vector<ItemLine> lines;
  read_item_lines(file, f, [&](ItemLine l) { lines.push_back(std::move(l)); });
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0].line, 1);
  EXPECT_EQ(lines[0].canonical, R"({"id":"a","text":"x"})");
  EXPECT_EQ(lines[1].line, 4);
  EXPECT_NE(lines[1].error.find("m.jsonl line 4: not valid JSON"), std::string::npos) << lines[1].error;
  EXPECT_NE(lines[2].error.find("m.jsonl line 5: id \"a\" appears twice"), std::string::npos) << lines[2].error;
  ASSERT_TRUE(lines[3].item.has_value());
  EXPECT_EQ(lines[3].item->id_string(), "2");
  EXPECT_THROW(read_item_lines(tmp / "missing.jsonl", f, [](ItemLine) {}), IoError);
}

}  // namespace
}  // namespace oe::pipeline
