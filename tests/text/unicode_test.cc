// UTF-8 validation, lossy decoding, NFC and the character classes of the pre-tokenizer. Expected values come from
// the Unicode Standard (§3.9 Table 3-7 and Table 3-8, UnicodeData.txt, PropList.txt White_Space), not from the code.
#include "text/unicode.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace oe::text {
namespace {

TEST(Utf8, WellFormedInputsPass) {
  for (std::string_view s : {std::string_view(""), std::string_view("plain ascii"), std::string_view("\0x", 2),
                             std::string_view("caf\xC3\xA9"), std::string_view("\xE2\x82\xAC"),  // U+20AC
                             std::string_view("\xED\x9F\xBF"),                                   // U+D7FF
                             std::string_view("\xEE\x80\x80"),                                   // U+E000
                             std::string_view("\xF0\x90\x8D\x88"),                               // U+10348
                             std::string_view("\xF4\x8F\xBF\xBF")}) {                            // U+10FFFF
    EXPECT_FALSE(find_invalid_utf8(s).has_value()) << s;
  }
}

TEST(Utf8, IllFormedInputsReportOffsetAndReason) {
  struct Case {
    std::string_view bytes;
    size_t offset;
    std::string_view reason_word;
  };
  const Case cases[] = {
      {"\x80", 0, "continuation"},          // lone continuation byte
      {"abc\xBF", 3, "continuation"},       //
      {"ab\xC3", 2, "truncated"},           // input ends inside a 2-byte sequence
      {"x\xE2\x82", 1, "truncated"},        // ... inside a 3-byte sequence
      {"\xE2\x28\xA1", 0, "continuation"},  // second byte is not a continuation byte
      {"\xC0\xAF", 0, "overlong"},          // overlong '/'
      {"\xC1\xBF", 0, "overlong"},          //
      {"\xE0\x80\xAF", 0, "overlong"},      // overlong 3-byte form
      {"\xF0\x80\x80\xAF", 0, "overlong"},  // overlong 4-byte form
      {"ok \xED\xA0\x80", 3, "surrogate"},  // U+D800
      {"\xED\xBF\xBF", 0, "surrogate"},     // U+DFFF
      {"\xF4\x90\x80\x80", 0, "10FFFF"},    // U+110000
      {"\xF5\x80\x80\x80", 0, "never"},     // lead byte never used
      {"\xFF", 0, "never"},                 //
  };
  for (const auto& c : cases) {
    const auto issue = find_invalid_utf8(c.bytes);
    ASSERT_TRUE(issue.has_value()) << c.bytes;
    EXPECT_EQ(issue->offset, c.offset) << c.bytes;
    EXPECT_NE(issue->reason.find(c.reason_word), std::string_view::npos) << issue->reason;
  }
}

TEST(Utf8, CheckThrowsInvalidInputNamingTheOffset) {
  try {
    check_utf8("abc\xED\xA0\x80", "prompt text");
    FAIL() << "no exception";
  } catch (const InvalidInput& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("prompt text"), std::string::npos) << msg;
    EXPECT_NE(msg.find("byte offset 3"), std::string::npos) << msg;
    EXPECT_NE(msg.find("0xED"), std::string::npos) << msg;
  }
}

TEST(Utf8, LossyDecodingReplacesMaximalSubparts) {
  // The example of Unicode §3.9, Table 3-8 ("U+FFFD for each maximal subpart").
  const std::string in = "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64";
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(utf8_lossy(in), "a" + fffd + fffd + fffd + "b" + fffd + "c" + fffd + fffd + "d");
  EXPECT_EQ(utf8_lossy("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), fffd + fffd + fffd);  // a surrogate: 3 maximal subparts of length 1
  EXPECT_EQ(utf8_lossy("\xE4\xB8"), fffd);                    // a truncated character is one subpart
}

TEST(Utf8, EncodeDecodeRoundTripOverAllScalarValues) {
  std::string all;
  for (char32_t cp = 0; cp < 0x110000; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    const size_t before = all.size();
    append_utf8(all, cp);
    const size_t expected_len = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    ASSERT_EQ(all.size() - before, expected_len) << std::hex << static_cast<uint32_t>(cp);
  }
  EXPECT_FALSE(find_invalid_utf8(all).has_value());
  size_t pos = 0;
  for (char32_t cp = 0; cp < 0x110000; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    ASSERT_EQ(next_code_point(all, pos), cp);
  }
  EXPECT_EQ(pos, all.size());
  std::string euro;
  append_utf8(euro, 0x20AC);
  EXPECT_EQ(euro, "\xE2\x82\xAC");
}

TEST(Nfc, ComposesReordersAndMapsSingletons) {
  EXPECT_EQ(nfc("cafe\xCC\x81"), "caf\xC3\xA9");                           // e + U+0301 -> U+00E9
  EXPECT_EQ(nfc("\xE2\x84\xAB"), "\xC3\x85");                              // U+212B ANGSTROM SIGN -> U+00C5
  EXPECT_EQ(nfc("\xE2\x84\xA6"), "\xCE\xA9");                              // U+2126 OHM SIGN -> U+03A9
  EXPECT_EQ(nfc("\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB"), "\xED\x95\x9C");  // jamo H A N -> U+D55C
  EXPECT_EQ(nfc("e\xCC\xA3\xCC\x82"), "\xE1\xBB\x87");                     // e + dot below + circumflex -> U+1EC7
  EXPECT_EQ(nfc("e\xCC\x82\xCC\xA3"), "\xE1\xBB\x87");                     // same after canonical reordering
  EXPECT_EQ(nfc("\xE0\xAF\x86\xE0\xAE\xBE"), "\xE0\xAF\x8A");              // Tamil U+0BC6 U+0BBE -> U+0BCA
  EXPECT_EQ(nfc("\xCD\x84"), "\xCC\x88\xCC\x81");                          // U+0344 -> U+0308 U+0301
  EXPECT_EQ(nfc("\xEF\xAC\x81"), "\xEF\xAC\x81");                          // U+FB01 (compatibility only) stays
  EXPECT_EQ(nfc("plain ascii \xC3\xA9"), "plain ascii \xC3\xA9");
  EXPECT_EQ(nfc(std::string_view("a\0\xCC\x81", 4)), std::string_view("a\0\xCC\x81", 4));  // NUL kept
}

TEST(CharClass, LettersAndNumbersFollowTheGeneralCategory) {
  for (char32_t cp : {U'a', U'Z', U'\u00E9', U'\u00DF', U'\u4E2D', U'\u0627', U'\u02B0' /*Lm*/, U'\u01C5' /*Lt*/,
                      U'\u00AA' /*Lo*/, U'\U0001D400' /*math bold A*/, U'\u017F'}) {
    EXPECT_TRUE(is_letter(cp)) << std::hex << static_cast<uint32_t>(cp);
    EXPECT_FALSE(is_number(cp));
  }
  for (char32_t cp : {U'0', U'9', U'\u0663' /*Arabic-Indic 3*/, U'\u00BD' /*No*/, U'\u216B' /*Nl*/, U'\u2460',
                      U'\u00B2', U'\U0001D7CE', U'\u3007'}) {
    EXPECT_TRUE(is_number(cp)) << std::hex << static_cast<uint32_t>(cp);
    EXPECT_FALSE(is_letter(cp));
  }
  for (char32_t cp : {U'_', U'\'', U'\u0301' /*Mn*/, U'\U0001F600', U'\u00A0', U'\u200D', U'\uFEFF', U'\0'}) {
    EXPECT_FALSE(is_letter(cp)) << std::hex << static_cast<uint32_t>(cp);
    EXPECT_FALSE(is_number(cp)) << std::hex << static_cast<uint32_t>(cp);
  }
}

TEST(CharClass, WhiteSpaceIsExactlyUnicodeWhiteSpace) {
  // PropList.txt White_Space (what \s means in Oniguruma and Rust regex).
  auto listed = [](char32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
  };
  int n = 0;
  for (char32_t cp = 0; cp < 0x110000; ++cp) {
    ASSERT_EQ(is_white_space(cp), listed(cp)) << std::hex << static_cast<uint32_t>(cp);
    n += listed(cp);
  }
  EXPECT_EQ(n, 25);
  EXPECT_FALSE(is_white_space(0xFEFF));  // JavaScript's \s includes it; Unicode White_Space does not
  EXPECT_FALSE(is_white_space(0x180E));
  EXPECT_FALSE(is_white_space(0x1C));  // Python's str.isspace() says yes; White_Space says no
}

}  // namespace
}  // namespace oe::text
