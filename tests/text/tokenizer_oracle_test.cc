// Parity of oe::text::Tokenizer with an independent implementation (@lenml/tokenizers, a port of the
// transformers.js tokenizers) on the real Qwen vocabulary: tests/text/tokenizer_oracle.mjs generates >= 2,000 varied
// strings (seeded) and writes the oracle's ids; every one must match exactly. Two tokenizer.json files: the npm one
// as shipped, and the Qwen2.5-Omni variant (Omni added-token names, ids 151643..151664) that the script derives.
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "text/text_test_util.h"
#include "text/tokenizer.h"
#include "text/unicode.h"

namespace oe::text {
namespace {

using namespace oe::text::testing;

// Runs the node oracle; returns the path of its JSONL output. Fails loudly when node or the packages are missing.
std::filesystem::path run_oracle(const std::string& name, const std::string& extra_args) {
  const std::string node = OE_NODE;
  if (node.empty() || node.find("NOTFOUND") != std::string::npos) {
    ADD_FAILURE() << "node was not found when configuring: install Node.js (Debian package nodejs), run `npm ci` in "
                  << OE_SOURCE_DIR << " and configure again.";
    return {};
  }
  const auto dir = std::filesystem::path(OE_BINARY_DIR) / "tests" / "text" / "oracle";
  std::filesystem::create_directories(dir);
  const auto out = dir / (name + ".jsonl");
  const auto log = dir / (name + ".log");
  std::filesystem::remove(out);
  const std::string cmd = fmt::format(
      "\"{}\" \"{}/tests/text/tokenizer_oracle.mjs\" --node-modules \"{}\" --tokenizer \"{}\" --out \"{}\" {} "
      "> \"{}\" 2>&1",
      node, OE_SOURCE_DIR, node_modules().string(), qwen_tokenizer_json().string(), out.string(), extra_args,
      log.string());
  const int rc = std::system(cmd.c_str());
  if (rc != 0 || !std::filesystem::exists(out)) {
    std::ifstream in(log);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ADD_FAILURE() << "the node oracle failed (exit " << rc << "): " << cmd << "\n" << text.substr(0, 4000);
    return {};
  }
  return out;
}

// Compares every case; prints the first few mismatches with the token strings on both sides.
void compare(const Tokenizer& tok, const std::filesystem::path& jsonl) {
  std::ifstream in(jsonl);
  std::string line;
  int n_cases = 0, n_bad_ids = 0, n_bad_decode = 0, n_bad_roundtrip = 0;
  size_t n_bytes = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    const std::string text = j.at("text").get<std::string>();
    const auto expected = j.at("ids").get<std::vector<int32_t>>();
    ++n_cases;
    n_bytes += text.size();
    const std::vector<int32_t> got = tok.encode(text);
    if (got != expected && ++n_bad_ids <= 8) {
      std::string e_tokens, g_tokens;
      for (int32_t id : expected) e_tokens += escaped(tok.id_to_token(id)) + " | ";
      for (int32_t id : got) g_tokens += escaped(tok.id_to_token(id)) + " | ";
      ADD_FAILURE() << "case " << n_cases << " text \"" << escaped(text) << "\"\n  oracle " << ids_string(expected)
                    << "\n         " << escaped(e_tokens, 600) << "\n  ours   " << ids_string(got) << "\n         "
                    << escaped(g_tokens, 600);
    }
    // decode with skip_special_tokens, against the oracle's decode of the same ids
    if (tok.decode(expected, /*skip_special=*/true) != j.at("decoded_skip").get<std::string>() && ++n_bad_decode <= 4) {
      ADD_FAILURE() << "case " << n_cases << " decode(skip_special) differs for \"" << escaped(text) << "\"";
    }
    // decode(encode(s)) gives back the NFC text (added tokens are ASCII: NFC never composes across them)
    if (tok.decode(got) != nfc(text) && ++n_bad_roundtrip <= 4) {
      ADD_FAILURE() << "case " << n_cases << " decode(encode(s)) != NFC(s) for \"" << escaped(text) << "\"";
    }
  }
  EXPECT_GE(n_cases, 2000) << "the oracle wrote too few cases";
  EXPECT_EQ(n_bad_ids, 0) << n_bad_ids << " of " << n_cases << " cases differ from the oracle";
  EXPECT_EQ(n_bad_decode, 0);
  EXPECT_EQ(n_bad_roundtrip, 0);
  std::printf("[ oracle   ] %d cases, %zu bytes of text, %d id mismatches\n", n_cases, n_bytes, n_bad_ids);
}

TEST(TokenizerOracle, QwenTokenizerAsShipped) {
  ASSERT_TRUE(npm_packages_present());
  const auto jsonl = run_oracle("qwen", "");
  ASSERT_FALSE(jsonl.empty());
  compare(Tokenizer::from_file(qwen_tokenizer_json()), jsonl);
}

TEST(TokenizerOracle, OmniVariant) {
  ASSERT_TRUE(npm_packages_present());
  const auto omni_json = std::filesystem::path(OE_BINARY_DIR) / "tests" / "text" / "oracle" / "omni_tokenizer.json";
  const auto jsonl = run_oracle("omni", fmt::format("--omni-out \"{}\"", omni_json.string()));
  ASSERT_FALSE(jsonl.empty());
  const Tokenizer tok = Tokenizer::from_file(omni_json);
  // The Omni names of spec §7.1 are single ids; the Qwen2.5 names they replace are plain text now.
  EXPECT_EQ(tok.token_to_id("<|AUDIO|>"), 151646);
  EXPECT_EQ(tok.token_to_id("<|IMAGE|>"), 151655);
  EXPECT_EQ(tok.token_to_id("<|VIDEO|>"), 151656);
  EXPECT_EQ(tok.token_to_id("<|vision_bos|>"), 151652);
  EXPECT_EQ(tok.token_to_id("<|object_ref_start|>"), -1);
  EXPECT_EQ(tok.vocab_size(), 151665);
  EXPECT_EQ(tok.encode("<|audio_bos|><|AUDIO|><|audio_eos|>"), (std::vector<int32_t>{151647, 151646, 151648}));
  EXPECT_GT(tok.encode("<|object_ref_start|>").size(), 1u);
  compare(tok, jsonl);
}

}  // namespace
}  // namespace oe::text
