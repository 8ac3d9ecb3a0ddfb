// oe::text::Tokenizer on its own: ids known from the vocabulary and the spec, the HF behaviour where the JavaScript
// oracle deviates, decoding, invalid input, malformed tokenizer.json files, BPE mechanics on a tiny hand-made
// vocabulary, thread safety, and speed. Parity with the independent oracle is tokenizer_oracle_test.cc.
#include "text/tokenizer.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "core/error.h"
#include "core/timer.h"
#include "text/bpe.h"
#include "text/text_test_util.h"
#include "text/unicode.h"

namespace oe::text {
namespace {

using namespace oe::text::testing;
using nlohmann::json;

// The npm tokenizer.json read independently of the code under test, and the tokenizer loaded once per process.
struct Qwen {
  json file;
  Tokenizer tok;
  int32_t vocab(const std::string& token) const { return file["model"]["vocab"].at(token).get<int32_t>(); }
  int32_t added(const std::string& content) const {
    for (const auto& t : file["added_tokens"]) {
      if (t["content"] == content) return t["id"].get<int32_t>();
    }
    ADD_FAILURE() << "no added token " << content;
    return -1;
  }
};

const Qwen& qwen() {
  static const Qwen* q = [] {
    std::ifstream in(qwen_tokenizer_json());
    return new Qwen{json::parse(in), Tokenizer::from_file(qwen_tokenizer_json())};
  }();
  return *q;
}

class QwenTokenizer : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(npm_packages_present()); }
};

TEST_F(QwenTokenizer, VocabularyHasTheExpectedSize) {
  const auto& model = qwen().file["model"];
  EXPECT_EQ(model["vocab"].size(), 151643u);  // ids 0..151642 are BPE tokens (spec §9)
  EXPECT_EQ(model["merges"].size(), 151387u);
  int32_t max_id = 0;
  for (const auto& t : qwen().file["added_tokens"]) max_id = std::max(max_id, t["id"].get<int32_t>());
  EXPECT_EQ(qwen().tok.vocab_size(), max_id + 1);
}

TEST_F(QwenTokenizer, KnownIds) {
  const Tokenizer& tok = qwen().tok;
  // From spec §7.1 (872 is confirmed by the config's user_token_id), checked against the vocabulary file too.
  EXPECT_EQ(qwen().vocab("user"), 872);
  EXPECT_EQ(tok.encode("user"), std::vector<int32_t>{872});
  EXPECT_EQ(tok.encode("\n"), std::vector<int32_t>{qwen().vocab("\xC4\x8A")});  // "Ċ"
  EXPECT_EQ(qwen().vocab("\xC4\x8A"), 198);
  EXPECT_EQ(tok.encode(" "), std::vector<int32_t>{qwen().vocab("\xC4\xA0")});  // "Ġ"
  EXPECT_EQ(tok.encode("system"), std::vector<int32_t>{qwen().vocab("system")});
  EXPECT_EQ(tok.encode("assistant"), std::vector<int32_t>{qwen().vocab("assistant")});
  EXPECT_EQ(tok.encode(" world"), std::vector<int32_t>{qwen().vocab("\xC4\xA0world")});
  EXPECT_EQ(tok.encode("<|im_start|>"), std::vector<int32_t>{151644});
  EXPECT_EQ(tok.encode("<|endoftext|>"), std::vector<int32_t>{151643});
  EXPECT_EQ(tok.token_to_id("\xC4\xA0"), qwen().vocab("\xC4\xA0"));
  EXPECT_EQ(tok.token_to_id("<|im_end|>"), 151645);
  EXPECT_EQ(tok.token_to_id("no such token here"), -1);
  EXPECT_EQ(tok.id_to_token(872), "user");
  EXPECT_EQ(tok.id_to_token(151645), "<|im_end|>");
  EXPECT_EQ(tok.id_to_token(-3), "");
  EXPECT_EQ(tok.id_to_token(1 << 30), "");
}

TEST_F(QwenTokenizer, AddedTokensSplitTheTextFirst) {
  const Tokenizer& tok = qwen().tok;
  const auto& q = qwen();
  EXPECT_EQ(tok.encode("<|im_start|>user\nhi<|im_end|>\n"),
            concat({{q.added("<|im_start|>")}, tok.encode("user\nhi"), {q.added("<|im_end|>")}, tok.encode("\n")}));
  // Leftmost match; the text around it is encoded on its own (no merge across the boundary).
  EXPECT_EQ(tok.encode("x<|im_end|>y"), concat({tok.encode("x"), {q.added("<|im_end|>")}, tok.encode("y")}));
  EXPECT_EQ(tok.encode("<<|im_end|>>"), concat({tok.encode("<"), {q.added("<|im_end|>")}, tok.encode(">")}));
  // An incomplete name is ordinary text.
  EXPECT_GT(tok.encode("<|im_end").size(), 1u);
  // Non-special added tokens are matched too.
  EXPECT_EQ(tok.encode("<tool_call>"), std::vector<int32_t>{q.added("<tool_call>")});
  // Added tokens are not normalised: a combining mark after one stays a separate segment.
  EXPECT_EQ(tok.encode("<|im_end|>\xCC\x81"), concat({{q.added("<|im_end|>")}, tok.encode("\xCC\x81")}));
}

// Inputs where the JavaScript oracle deviates from HF tokenizers (excluded there): the pieces of HF's split are
// each encoded alone (every one is a single pre-token under both regex engines) and must concatenate to the whole.
// (The third class, "'" + U+017F, changes pre-tokens but never ids with this vocabulary, where "ſ" merges with
// nothing; pretokenize_test.cc checks its split.)
TEST_F(QwenTokenizer, FollowsHuggingFaceWhereTheOracleDeviates) {
  const Tokenizer& tok = qwen().tok;
  struct Case {
    std::string text;
    std::vector<std::string> hf_pieces, js_pieces;
  };
  const Case cases[] = {
      {"a \uFEFFb", {"a", " \uFEFF", "b"}, {"a", " ", "\uFEFFb"}},  // U+FEFF: not \s in HF
      {"a \u0085b", {"a", " ", "\u0085b"}, {"a", " \u0085", "b"}},  // U+0085: \s in HF
  };
  for (const auto& c : cases) {
    std::vector<int32_t> hf, js;
    for (const auto& p : c.hf_pieces) hf = concat({hf, tok.encode(p)});
    for (const auto& p : c.js_pieces) js = concat({js, tok.encode(p)});
    ASSERT_NE(hf, js) << "case does not tell the two behaviours apart: " << escaped(c.text);
    EXPECT_EQ(tok.encode(c.text), hf) << escaped(c.text);
  }
}

TEST_F(QwenTokenizer, NormalisesToNfc) {
  const Tokenizer& tok = qwen().tok;
  EXPECT_EQ(tok.encode("cafe\xCC\x81"), tok.encode("caf\xC3\xA9"));
  EXPECT_EQ(tok.encode("\xE2\x84\xAB"), tok.encode("\xC3\x85"));
  EXPECT_EQ(tok.encode("\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB"), tok.encode("\xED\x95\x9C"));
}

TEST_F(QwenTokenizer, EmptyAndInvalidInput) {
  const Tokenizer& tok = qwen().tok;
  EXPECT_TRUE(tok.encode("").empty());
  const struct {
    std::string bytes;
    std::string offset;
  } bad[] = {{"ab\x80", "offset 2"},         {"abc\xE4\xB8", "offset 3"},      {"\xC0\xAF", "offset 0"},
             {"x\xED\xA0\x80y", "offset 1"}, {"\xF4\x90\x80\x80", "offset 0"}, {"<|im_end|>\xFF", "offset 10"}};
  for (const auto& b : bad) {
    try {
      tok.encode(b.bytes);
      ADD_FAILURE() << "no error for " << escaped(b.bytes);
    } catch (const InvalidInput& e) {
      EXPECT_NE(std::string(e.what()).find(b.offset), std::string::npos) << e.what();
    }
  }
}

TEST_F(QwenTokenizer, DecodeInvertsEncode) {
  const Tokenizer& tok = qwen().tok;
  // Random strings over many ranges, including the classes the oracle cannot check.
  const std::pair<char32_t, char32_t> ranges[] = {
      {0x20, 0x7E},       {0x20, 0x7E},       {0x09, 0x0D},       {0x00, 0x1F},     {0x80, 0xFF},     {0x0300, 0x036F},
      {0x0370, 0x03FF},   {0x0400, 0x04FF},   {0x0590, 0x06FF},   {0x0900, 0x097F}, {0x0E00, 0x0E7F}, {0x1100, 0x11FF},
      {0x2000, 0x206F},   {0x3000, 0x30FF},   {0x4E00, 0x9FFF},   {0xAC00, 0xD7A3}, {0xE000, 0xE0FF}, {0xFE00, 0xFEFF},
      {0x1F300, 0x1FAFF}, {0x10000, 0x1FFFF}, {0x20000, 0x2A6DF}, {0x0085, 0x0085}, {0x017F, 0x017F}};
  const char* specials[] = {"<|im_start|>", "<|im_end|>", "<|endoftext|>", "<tool_call>", "<|vision_start|>"};
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string s;
    const int n = std::uniform_int_distribution<int>(0, 40)(rng);
    for (int k = 0; k < n; ++k) {
      if (rng() % 25 == 0) {
        s += specials[rng() % std::size(specials)];
        continue;
      }
      const auto [lo, hi] = ranges[rng() % std::size(ranges)];
      const char32_t cp = lo + static_cast<char32_t>(rng() % (hi - lo + 1));
      if (cp == '\'' || rng() % 10 == 0) s += '\'';
      append_utf8(s, cp);
    }
    const auto ids = tok.encode(s);
    ASSERT_EQ(tok.decode(ids), nfc(s)) << escaped(s);
  }
}

TEST_F(QwenTokenizer, DecodeSkipsSpecialTokensAndUnknownIds) {
  const Tokenizer& tok = qwen().tok;
  const auto& q = qwen();
  const std::vector<int32_t> ids = concat({{q.added("<|im_start|>")},
                                           tok.encode("user\nhi "),
                                           {q.added("<tool_call>")},
                                           {q.added("<|im_end|>")},
                                           {1 << 29}});
  EXPECT_EQ(tok.decode(ids), "<|im_start|>user\nhi <tool_call><|im_end|>");
  EXPECT_EQ(tok.decode(ids, /*skip_special=*/true), "user\nhi <tool_call>");  // <tool_call> is not special
  // A lone lead byte decodes to U+FFFD; its continuation in the next token completes the character.
  const std::string zhong = "\xE4\xB8\xAD";  // U+4E2D
  std::vector<int32_t> bytes;
  for (char c : zhong) bytes.push_back(tok.token_to_id(byte_level_encode(std::string(1, c))));
  ASSERT_EQ(std::count(bytes.begin(), bytes.end(), -1), 0);
  EXPECT_EQ(tok.decode({bytes[0]}), "\xEF\xBF\xBD");
  EXPECT_EQ(tok.decode({bytes[0], bytes[1]}), "\xEF\xBF\xBD");  // one maximal subpart
  EXPECT_EQ(tok.decode(bytes), zhong);
}

TEST_F(QwenTokenizer, ConcurrentEncodingGivesTheSameIds) {
  const Tokenizer& tok = qwen().tok;
  std::vector<std::string> texts;
  for (int i = 0; i < 400; ++i) {
    texts.push_back(fmt::format("Item {} of the list: it's the {}th word, caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 {}\n", i,
                                i * 7, std::string(static_cast<size_t>(i % 13), ' ')));
  }
  std::vector<std::vector<int32_t>> serial;
  for (const auto& t : texts) serial.push_back(tok.encode(t));
  std::vector<std::vector<int32_t>> a(texts.size()), b(texts.size());
  std::thread t1([&] {
    for (size_t i = 0; i < texts.size(); ++i) a[i] = tok.encode(texts[i]);
  });
  std::thread t2([&] {
    for (size_t i = texts.size(); i-- > 0;) b[i] = tok.encode(texts[i]);
  });
  t1.join();
  t2.join();
  EXPECT_EQ(a, serial);
  EXPECT_EQ(b, serial);
}

// ---------------------------------------------------------------- a tiny hand-made tokenizer.json

// The 256 byte-level tokens with id = byte value, extra tokens after them, and the Qwen2 pipeline.
json tiny_tokenizer(const std::vector<std::string>& extra, const json& merges) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_level_encode(std::string(1, static_cast<char>(b)))] = b;
  int next = 256;
  for (const auto& t : extra) vocab[t] = next++;
  const json& qwen_file = qwen().file;
  return json{{"version", "1.0"},
              {"added_tokens", json::array({json{{"id", 300},
                                                 {"content", "<|x|>"},
                                                 {"special", true},
                                                 {"lstrip", false},
                                                 {"rstrip", false},
                                                 {"single_word", false},
                                                 {"normalized", false}}})},
              {"normalizer", qwen_file["normalizer"]},
              {"pre_tokenizer", qwen_file["pre_tokenizer"]},
              {"decoder", qwen_file["decoder"]},
              {"model", json{{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
}

std::filesystem::path write_json(const std::string& name, const std::string& text) {
  const auto dir = std::filesystem::path(OE_BINARY_DIR) / "tests" / "text" / "tiny";
  std::filesystem::create_directories(dir);
  const auto path = dir / name;
  std::ofstream(path) << text;
  return path;
}

TEST_F(QwenTokenizer, BpeAppliesMergesLowestRankFirst) {
  // ids: aa 256, ab 257, bc 258, abc 259
  const std::vector<std::string> extra = {"aa", "ab", "bc", "abc"};
  const auto tok1 = Tokenizer::from_file(write_json(
      "rank1.json", tiny_tokenizer(extra, json::parse(R"([["b", "c"], ["a", "b"], ["a", "bc"], ["a", "a"]])")).dump()));
  EXPECT_EQ(tok1.encode("abc"), (std::vector<int32_t>{259}));       // b+c (rank 0), then a+bc
  EXPECT_EQ(tok1.encode("aaa"), (std::vector<int32_t>{256, 'a'}));  // equal ranks: leftmost first
  EXPECT_EQ(tok1.encode("ab"), (std::vector<int32_t>{257}));
  EXPECT_EQ(tok1.encode("a<|x|>b"), (std::vector<int32_t>{'a', 300, 'b'}));
  // Same merges with a+b first, in the "left right" string form: a+b wins and ab+c is not a merge.
  const auto tok2 = Tokenizer::from_file(
      write_json("rank2.json", tiny_tokenizer(extra, json::parse(R"(["a b", "b c", "a bc", "a a"])")).dump()));
  EXPECT_EQ(tok2.encode("abc"), (std::vector<int32_t>{257, 'c'}));
  EXPECT_EQ(tok2.encode(" abc"), (std::vector<int32_t>{' ', 257, 'c'}));  // "Ġ"+"ab" is not a merge
  EXPECT_EQ(tok2.vocab_size(), 301);
  EXPECT_EQ(tok2.decode({300, 257, 'c'}, /*skip_special=*/true), "abc");
}

// Loads a variant of the tiny tokenizer.json and expects an error of type E whose message names the file and
// contains `words`.
template <typename E>
void expect_load_error(const std::string& name, const std::string& text, const std::string& words) {
  const auto path = write_json(name, text);
  try {
    Tokenizer::from_file(path);
    ADD_FAILURE() << name << ": loaded without error";
  } catch (const E& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find(words), std::string::npos) << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << name << ": wrong error type: " << e.what();
  }
}

TEST_F(QwenTokenizer, MalformedFilesGiveClearErrors) {
  const std::vector<std::string> extra = {"ab"};
  const json good = tiny_tokenizer(extra, json::parse(R"([["a", "b"]])"));
  auto with = [&](const std::function<void(json&)>& edit) {
    json j = good;
    edit(j);
    return j.dump();
  };
  expect_load_error<InvalidInput>("not_json.json", "{\"model\": [1, 2", "not valid JSON");
  expect_load_error<InvalidInput>("array.json", "[1, 2]", "not a JSON object");
  expect_load_error<InvalidInput>("no_model.json", with([](json& j) { j.erase("model"); }), "\"model\"");
  expect_load_error<Unsupported>("wordpiece.json", with([](json& j) { j["model"]["type"] = "WordPiece"; }),
                                 "WordPiece");
  expect_load_error<InvalidInput>("no_vocab.json", with([](json& j) { j["model"].erase("vocab"); }), "vocab");
  expect_load_error<InvalidInput>("no_merges.json", with([](json& j) { j["model"].erase("merges"); }), "merges");
  expect_load_error<InvalidInput>("bad_merge.json", with([](json& j) { j["model"]["merges"].push_back(42); }),
                                  "model.merges[1]");
  expect_load_error<InvalidInput>("bad_merge_str.json", with([](json& j) { j["model"]["merges"].push_back("abc"); }),
                                  "model.merges[1]");
  expect_load_error<InvalidInput>("merge_oov.json", with([](json& j) {
                                    j["model"]["merges"].push_back(json::array({"b", "c"}));
                                  }),
                                  "\"bc\" is not in the vocabulary");
  expect_load_error<InvalidInput>("no_byte.json", with([](json& j) { j["model"]["vocab"].erase("Ġ"); }), "0x20");
  // One huge id must not allocate a table entry for every id below it (found by fuzz/tokenizer.cc: out of memory).
  expect_load_error<InvalidInput>("huge_id.json", with([](json& j) { j["model"]["vocab"]["zz"] = 2147483647; }),
                                  "id 2147483647, past the largest supported id 2097151");
  expect_load_error<InvalidInput>("huge_added_id.json", with([](json& j) { j["added_tokens"][0]["id"] = 4000000000u; }),
                                  "added_tokens[0] has id 4000000000, past the largest supported id");
  expect_load_error<InvalidInput>("dup_id.json", with([](json& j) { j["model"]["vocab"]["zz"] = 5; }), "id 5");
  expect_load_error<Unsupported>(
      "regex.json", with([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\s+"; }),
      "pre_tokenizer");
  expect_load_error<Unsupported>("use_regex.json",
                                 with([](json& j) { j["pre_tokenizer"]["pretokenizers"][1].erase("use_regex"); }),
                                 "use_regex false");
  expect_load_error<Unsupported>("nfkc.json", with([](json& j) { j["normalizer"]["type"] = "NFKC"; }), "NFKC");
  expect_load_error<Unsupported>("lstrip.json", with([](json& j) { j["added_tokens"][0]["lstrip"] = true; }), "lstrip");
  expect_load_error<InvalidInput>("added_bad.json", with([](json& j) { j["added_tokens"][0]["id"] = "x"; }),
                                  "added_tokens[0]");
  EXPECT_THROW(Tokenizer::from_file(write_json("ok.json", good.dump()).string() + ".missing"), IoError);
  EXPECT_EQ(Tokenizer::from_file(write_json("ok.json", good.dump())).encode("ab"), std::vector<int32_t>{256});
}

}  // namespace
}  // namespace oe::text
