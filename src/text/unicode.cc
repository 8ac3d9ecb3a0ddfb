#include "text/unicode.h"

#include <utf8proc.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/error.h"

namespace oe::text {
namespace {

// One step of a UTF-8 decoder over p[0..avail): the length (1..4) of the well-formed sequence at p, or 0 when
// it is ill-formed, in which case *bad_len is the length of its maximal ill-formed subpart (>= 1) and *reason
// says what is wrong.
int utf8_step(const unsigned char* p, size_t avail, size_t* bad_len, std::string_view* reason) {
  const unsigned b0 = p[0];
  if (b0 < 0x80) return 1;
  int need = 0;
  unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte (Table 3-7)
  std::string_view range_reason;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    if (b0 == 0xE0) lo = 0xA0, range_reason = "overlong encoding";
    if (b0 == 0xED) hi = 0x9F, range_reason = "surrogate code point";
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    if (b0 == 0xF0) lo = 0x90, range_reason = "overlong encoding";
    if (b0 == 0xF4) hi = 0x8F, range_reason = "code point above U+10FFFF";
  } else {
    *bad_len = 1;
    *reason = b0 <= 0xBF   ? "unexpected continuation byte"
              : b0 <= 0xC1 ? "overlong encoding"
                           : "byte that never occurs in UTF-8";
    return 0;
  }
  for (int i = 1; i <= need; ++i) {
    if (static_cast<size_t>(i) >= avail) {
      *bad_len = static_cast<size_t>(i);
      *reason = "truncated sequence (input ends inside a character)";
      return 0;
    }
    const unsigned b = p[i];
    const bool ok = i == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) {
      *bad_len = static_cast<size_t>(i);
      *reason =
          (i == 1 && b >= 0x80 && b <= 0xBF) ? range_reason : "incomplete sequence (expected a continuation byte)";
      return 0;
    }
  }
  return need + 1;
}

// Length of the all-ASCII prefix of s, eight bytes at a time.
size_t ascii_prefix(std::string_view s) {
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    if (w & 0x8080808080808080ull) break;
  }
  while (i < s.size() && static_cast<unsigned char>(s[i]) < 0x80) ++i;
  return i;
}

}  // namespace

std::optional<Utf8Issue> find_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t i = 0;
  while (i < s.size()) {
    i += ascii_prefix(s.substr(i));
    if (i >= s.size()) break;
    size_t bad_len = 0;
    std::string_view reason;
    const int n = utf8_step(p + i, s.size() - i, &bad_len, &reason);
    if (n == 0) return Utf8Issue{i, reason};
    i += static_cast<size_t>(n);
  }
  return std::nullopt;
}

void check_utf8(std::string_view s, std::string_view what) {
  if (auto issue = find_invalid_utf8(s)) {
    throw InvalidInput(fmt::format("{}: invalid UTF-8 at byte offset {} (byte 0x{:02X}): {}", what, issue->offset,
                                   static_cast<unsigned char>(s[issue->offset]), issue->reason));
  }
}

std::string utf8_lossy(std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    size_t bad_len = 0;
    std::string_view reason;
    const int n = utf8_step(p + i, bytes.size() - i, &bad_len, &reason);
    if (n > 0) {
      out.append(bytes.data() + i, static_cast<size_t>(n));
      i += static_cast<size_t>(n);
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD
      i += bad_len;
    }
  }
  return out;
}

char32_t next_code_point(std::string_view s, size_t& pos) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + pos;
  const unsigned b0 = p[0];
  if (b0 < 0x80) {
    pos += 1;
    return b0;
  }
  OE_DCHECK(pos + (b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4) <= s.size(), "truncated UTF-8 at {}", pos);
  if (b0 < 0xE0) {
    pos += 2;
    return ((b0 & 0x1Fu) << 6) | (p[1] & 0x3Fu);
  }
  if (b0 < 0xF0) {
    pos += 3;
    return ((b0 & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
  }
  pos += 4;
  return ((b0 & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string nfc(std::string_view s) {
  // A lead byte >= 0xCC starts a code point >= U+0300; everything below U+0300 is NFC-stable (no decomposition,
  // never composes with what precedes it), so text without such bytes is already in NFC.
  bool maybe_changes = false;
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0xCC) {
      maybe_changes = true;
      break;
    }
  }
  if (!maybe_changes) return std::string(s);
  utf8proc_uint8_t* dst = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), static_cast<utf8proc_ssize_t>(s.size()), &dst,
                   static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) {
    throw InvalidInput(fmt::format("NFC normalisation failed: {}", utf8proc_errmsg(n)));
  }
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owner(dst, &std::free);
  return std::string(reinterpret_cast<const char*>(dst), static_cast<size_t>(n));
}

bool is_letter(char32_t cp) {
  if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
      return true;
    default:
      return false;
  }
}

bool is_number(char32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return true;
    default:
      return false;
  }
}

bool is_white_space(char32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
  if (cp < 0x85) return false;
  if (cp < 0x2000) return cp == 0x85 || cp == 0xA0 || cp == 0x1680;
  if (cp <= 0x200A) return true;
  return cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

}  // namespace oe::text
