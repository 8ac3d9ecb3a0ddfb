// Unicode helpers of the tokenizer: UTF-8 validation and decoding, NFC (utf8proc), and the character classes the
// Qwen2 pre-tokenizer regex uses (\p{L}, \p{N}, \s as the Oniguruma/Rust engines of Hugging Face define them).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace oe::text {

// The first ill-formed sequence of a byte string: where it starts and why it is ill-formed.
struct Utf8Issue {
  size_t offset = 0;
  std::string_view reason;  // e.g. "truncated sequence", "surrogate code point", "overlong encoding"
};

// Checks s against the well-formed UTF-8 of Unicode §3.9 (Table 3-7): no overlong forms, no surrogates
// (U+D800..U+DFFF), nothing past U+10FFFF. nullopt when s is well-formed.
std::optional<Utf8Issue> find_invalid_utf8(std::string_view s);

// InvalidInput "<what>: invalid UTF-8 at byte offset N (byte 0xXX): <reason>" when s is ill-formed.
void check_utf8(std::string_view s, std::string_view what);

// Replaces every maximal ill-formed subpart with U+FFFD, as Rust's String::from_utf8_lossy and WHATWG decoders do
// (what Hugging Face's decode does with bytes that do not form UTF-8).
std::string utf8_lossy(std::string_view bytes);

// Decodes the code point starting at s[pos] and advances pos past it. s must be well-formed (checked in debug).
char32_t next_code_point(std::string_view s, size_t& pos);
void append_utf8(std::string& out, char32_t cp);

// Unicode Normalization Form C of well-formed UTF-8 (utf8proc). Text without any code point >= U+0300 is already
// in NFC and comes back unchanged without a library call.
std::string nfc(std::string_view s);

bool is_letter(char32_t cp);  // general category L (Lu, Ll, Lt, Lm, Lo): regex \p{L}
bool is_number(char32_t cp);  // general category N (Nd, Nl, No): regex \p{N}
// Unicode White_Space, which is \s in Oniguruma and Rust regex (the engines of HF tokenizers): U+0009..000D, 0020,
// 0085, 00A0, 1680, 2000..200A, 2028, 2029, 202F, 205F, 3000. Not U+FEFF and not U+180E (JavaScript's \s differs).
bool is_white_space(char32_t cp);

}  // namespace oe::text
