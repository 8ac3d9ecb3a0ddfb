// The OpenAI request shapes into pipeline items: every form of "input", content parts, inline media and paths under
// the media root, and a 400 naming the field for everything else.
#include <sys/stat.h>

#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/files.h"
#include "common/temp_dir.h"
#include "core/error.h"
#include "serve/api_error.h"
#include "serve/media.h"
#include "serve/request.h"

namespace oe::serve {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::TempDir;

struct Fixture {
  TempDir tmp;
  MediaSource media;
  RequestLimits limits;
  Fixture() {
    fs::create_directories(tmp / "root/sub");
    testing::write_file(tmp / "root/sub/a.png", "png bytes");
    testing::write_file(tmp / "secret.txt", "outside");
    media.root = fs::canonical(tmp / "root");
    media.spool = std::make_shared<SpoolDir>(tmp.path());
    limits.model_dim = 64;
  }
  EmbeddingsRequest parse(const std::string& body) const {
    return parse_embeddings_request(json::parse(body), limits, media);
  }
  // The message of the 400 a body gets (fails the test when it is accepted).
  std::string error(const std::string& body) const {
    try {
      parse(body);
    } catch (const ApiException& e) {
      EXPECT_EQ(e.error.status, 400) << body;
      return e.error.message;
    }
    ADD_FAILURE() << "accepted: " << body;
    return "";
  }
};

TEST(Request, StringsAndListsBecomeDocumentsOrQueries) {
  Fixture f;
  auto r = f.parse(R"({"model": "m", "input": "hello"})");
  ASSERT_EQ(r.items.size(), 1u);
  EXPECT_EQ(r.items[0].text, "hello");
  EXPECT_EQ(r.items[0].role, text::Role::Document);
  EXPECT_FALSE(r.base64);
  r = f.parse(R"({"input": ["a", "b"], "input_type": "query", "encoding_format": "base64"})");
  ASSERT_EQ(r.items.size(), 2u);
  EXPECT_EQ(r.items[1].text, "b");
  EXPECT_EQ(r.items[1].role, text::Role::Query);
  EXPECT_TRUE(r.base64);
  // An item's own role wins over input_type.
  r = f.parse(R"({"input": [{"role": "document", "content": "x"}], "input_type": "query"})");
  EXPECT_EQ(r.items[0].role, text::Role::Document);
}

TEST(Request, ContentPartsJoinTextsAndResolveMedia) {
  Fixture f;
  const auto r = f.parse(R"({"input": [{"content": [
      {"type": "text", "text": "one"},
      {"type": "image_url", "image_url": {"url": "sub/a.png"}},
      {"type": "text", "text": "two"},
      {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
      {"type": "video_url", "video_url": {"url": "data:video/mp4;base64,AAAA"}}]}]})");
  ASSERT_EQ(r.items.size(), 1u);
  const auto& it = r.items[0];
  EXPECT_EQ(it.text, "one\ntwo");
  ASSERT_EQ(it.images.size(), 1u);
  EXPECT_EQ(it.images[0], fs::canonical(f.tmp / "root/sub/a.png"));
  ASSERT_EQ(it.audios.size(), 1u);
  EXPECT_EQ(testing::read_file(it.audios[0]), "RIFF");
  ASSERT_EQ(it.videos.size(), 1u);
  EXPECT_EQ(testing::read_file(it.videos[0]), std::string(3, '\0'));
  // Inline media are private files, removed with the request.
  struct stat st {};
  ASSERT_EQ(::stat(it.audios[0].c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(r.files->owned(), 2u);
  const fs::path audio = it.audios[0];
  { auto copy = r; }
  EXPECT_TRUE(fs::exists(audio));  // still owned by `r`
}

TEST(Request, InlineFilesGoAwayWithTheRequest) {
  Fixture f;
  fs::path audio;
  {
    const auto r = f.parse(R"({"input": [{"content": [{"type": "input_audio", "input_audio": {"data": "UklGRg=="}}]}]})");
    audio = r.items[0].audios[0];
    EXPECT_TRUE(fs::exists(audio));
  }
  EXPECT_FALSE(fs::exists(audio));
}

TEST(Request, PathsMustStayUnderTheMediaRoot) {
  Fixture f;
  auto body = [](const std::string& url) {
    return R"({"input": [{"content": [{"type": "image_url", "image_url": {"url": ")" + url + R"("}}]}]})";
  };
  EXPECT_NE(f.error(body("../secret.txt")).find("\"..\" is not allowed"), std::string::npos);
  EXPECT_NE(f.error(body("sub/../../secret.txt")).find("\"..\" is not allowed"), std::string::npos);
  EXPECT_NE(f.error(body((f.tmp / "secret.txt").string())).find("leads out of the media root"), std::string::npos);
  fs::create_symlink(f.tmp / "secret.txt", f.tmp / "root/link.png");
  EXPECT_NE(f.error(body("link.png")).find("input[0].content[0].image_url: link.png leads out of the media root"),
            std::string::npos);
  fs::create_directory_symlink(f.tmp.path(), f.tmp / "root/up");
  EXPECT_NE(f.error(body("up/secret.txt")).find("leads out of the media root"), std::string::npos);
  EXPECT_NE(f.error(body("missing.png")).find("no such file under the media root"), std::string::npos);
  EXPECT_NE(f.error(body("sub")).find("not a regular file"), std::string::npos);
  EXPECT_NE(f.error(body("https://example.com/a.png")).find("remote URLs are not fetched"), std::string::npos);
  // A symbolic link that stays inside is followed; file: URIs are paths too.
  fs::create_symlink(f.tmp / "root/sub/a.png", f.tmp / "root/inside.png");
  EXPECT_EQ(f.parse(body("inside.png")).items[0].images[0], fs::canonical(f.tmp / "root/sub/a.png"));
  EXPECT_EQ(f.parse(body("file:sub/a.png")).items[0].images[0], fs::canonical(f.tmp / "root/sub/a.png"));
  // Without a media root no path is accepted.
  f.media.root.clear();
  EXPECT_NE(f.error(body("sub/a.png")).find("no --media-root"), std::string::npos);
}

TEST(Request, WrongShapesAreRefusedNamingTheField) {
  Fixture f;
  EXPECT_NE(f.error(R"({"model": "m"})").find("\"input\" is required"), std::string::npos);
  EXPECT_NE(f.error(R"({"input": 5})").find("input: expected a string or a list, got a number"), std::string::npos);
  EXPECT_NE(f.error(R"({"input": []})").find("input: the list is empty"), std::string::npos);
  EXPECT_NE(f.error(R"({"input": [[1, 2]]})").find("input[0]"), std::string::npos);
  EXPECT_NE(f.error(R"({"input": [1, 2]})").find("token id lists are not accepted"), std::string::npos);
  EXPECT_NE(f.error(R"({"input": ["a", {"content": 3}]})").find("input[1].content: expected"), std::string::npos);
  EXPECT_NE(f.error(R"({"input": [{"content": [{"type": "pdf"}]}]})").find("unknown content part type \"pdf\""),
            std::string::npos);
  EXPECT_NE(f.error(R"({"input": [{"content": [{"type": "text", "text": 7}]}]})")
                .find("input[0].content[0].text: expected a string, got a number"),
            std::string::npos);
  EXPECT_NE(f.error(R"({"input": "a", "encoding_format": "int8"})").find("encoding_format"), std::string::npos);
  EXPECT_NE(f.error(R"({"input": "a", "dimensions": 32})").find("vectors have 64 dimensions"), std::string::npos);
  EXPECT_EQ(f.parse(R"({"input": "a", "dimensions": 64})").items.size(), 1u);
  EXPECT_NE(f.error(R"({"input": "a", "input_type": "answer"})").find("unknown role \"answer\""), std::string::npos);
  EXPECT_NE(f.error(R"({"input": "a", "truncate": "no"})").find("truncate"), std::string::npos);
  EXPECT_FALSE(f.parse(R"({"input": "a", "truncate": false})").allow_truncation);
  EXPECT_NE(f.error(R"({"input": "a", "fusion": "early"})").find("fusion"), std::string::npos);
  EXPECT_EQ(f.parse(R"({"input": "a", "fusion": "late"})").fusion, "late");
  EXPECT_NE(f.error(R"({"input": [{"content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}]}]})")
                .find("only base64 data: URIs"),
            std::string::npos);
  EXPECT_NE(f.error(R"({"input": [{"content": [{"type": "input_audio", "input_audio": {"data": "!!!!"}}]}]})")
                .find("input[0].content[0].input_audio.data: not valid base64"),
            std::string::npos);
}

TEST(Request, TooManyItemsOrPartsAreRefused) {
  Fixture f;
  json many = json::array();
  for (int i = 0; i < 10000; ++i) many.push_back("x");
  EXPECT_NE(f.error(json{{"input", many}}.dump()).find("10000 inputs, at most 2048"), std::string::npos);
  json parts = json::array();
  for (int i = 0; i < 65; ++i) parts.push_back({{"type", "text"}, {"text", "x"}});
  EXPECT_NE(f.error(json{{"input", json::array({json{{"content", parts}}})}}.dump()).find("65 content parts"),
            std::string::npos);
}

TEST(Request, BodyMustBeAJsonObject) {
  // The last: a number past double's range, which nlohmann reports as out_of_range (found by fuzz/request.cc).
  for (const char* body : {"{bad", "[1, 2]", "", "\"x\"", "{\"input\": 1e999}"}) {
    try {
      parse_body(body);
      ADD_FAILURE() << "accepted: " << body;
    } catch (const ApiException& e) {
      EXPECT_EQ(e.error.status, 400);
      const auto j = json::parse(e.error.body());
      EXPECT_TRUE(j["error"]["message"].is_string());
      EXPECT_TRUE(j["error"].contains("param"));
      EXPECT_TRUE(j["error"].contains("code"));
    }
  }
}

TEST(Request, SearchQueries) {
  Fixture f;
  auto r = parse_search_request(json::parse(R"({"query": "cats", "k": 3, "modality": ["image", "video"], "late_weight": 0.25})"),
                                f.limits, f.media);
  EXPECT_EQ(r.query.text, "cats");
  EXPECT_EQ(r.query.role, text::Role::Query);
  EXPECT_EQ(r.k, 3);
  EXPECT_EQ(r.modalities.size(), 2u);
  EXPECT_EQ(*r.late_weight, 0.25);
  for (const char* bad : {R"({"query": "a", "k": 0})", R"({"query": "a", "modality": "smell"})",
                          R"({"query": "a", "late_weight": 2})", R"({"k": 3})"}) {
    EXPECT_THROW(parse_search_request(json::parse(bad), f.limits, f.media), ApiException) << bad;
  }
}

TEST(Base64, RoundTripsAndRefusesGarbage) {
  for (const std::string& s : std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)})
    EXPECT_EQ(decode_base64(encode_base64(s), "x"), s);
  EXPECT_EQ(encode_base64("hello"), "aGVsbG8=");
  EXPECT_EQ(decode_base64("aGVs\nbG8", "x"), "hello");
  EXPECT_THROW(decode_base64("aGVsbG8=x", "x"), InvalidInput);
  EXPECT_THROW(decode_base64("a", "x"), InvalidInput);
  EXPECT_THROW(decode_base64("a$bc", "x"), InvalidInput);
}

TEST(Media, RedactNamesTheFieldNotTheServersPath) {
  MediaFiles files;
  files.add("/srv/spool/m-1", "input[3].content[0].image_url", /*owned=*/false);
  EXPECT_EQ(files.redact("/srv/spool/m-1: not an image"), "input[3].content[0].image_url: not an image");
}

}  // namespace
}  // namespace oe::serve
