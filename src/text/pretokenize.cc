#include "text/pretokenize.h"

#include <cstdint>

#include "core/error.h"
#include "text/unicode.h"

namespace oe::text {

const std::string_view QWEN2_PRETOKENIZE_PATTERN =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

namespace {

// Character classes of the pattern. \s is Newline or Space; [^\s\p{L}\p{N}] is Other.
enum class CharClass : uint8_t { Letter, Number, Newline, Space, Other };

CharClass classify(char32_t cp) {
  if (cp == '\r' || cp == '\n') return CharClass::Newline;
  if (is_letter(cp)) return CharClass::Letter;
  if (is_number(cp)) return CharClass::Number;
  if (is_white_space(cp)) return CharClass::Space;
  return CharClass::Other;
}

bool is_ws(CharClass c) { return c == CharClass::Newline || c == CharClass::Space; }

// Simple case folding restricted to what the contractions can meet: ASCII letters, and U+017F LATIN SMALL LETTER
// LONG S, which folds to 's' (so "'ſ" matches (?i:'s) in Oniguruma, Rust regex and Python's regex alike).
char32_t fold(char32_t cp) {
  if (cp >= 'A' && cp <= 'Z') return cp + 32;
  if (cp == 0x17F) return 's';
  return cp;
}

struct Decoded {
  std::vector<char32_t> cp;
  std::vector<CharClass> cls;
  std::vector<size_t> offset;  // byte offset of each code point, plus the end
};

// (?i:'s|'t|'re|'ve|'m|'ll|'d): end of the match at i, or 0 when none.
size_t match_contraction(const Decoded& d, size_t i, size_t n) {
  if (d.cp[i] != '\'' || i + 1 >= n) return 0;
  const char32_t c1 = fold(d.cp[i + 1]);
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return i + 2;
  if (i + 2 >= n) return 0;
  const char32_t c2 = fold(d.cp[i + 2]);
  if ((c1 == 'r' || c1 == 'v') && c2 == 'e') return i + 3;
  if (c1 == 'l' && c2 == 'l') return i + 3;
  return 0;
}

// End of the leftmost-alternative match starting at code point i (always > i: every character matches something).
size_t match_at(const Decoded& d, size_t i, size_t n) {
  const auto& cls = d.cls;
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)
  if (size_t end = match_contraction(d, i, n)) return end;
  // [^\r\n\p{L}\p{N}]?\p{L}+  (when the optional character is taken but no letter follows, the engine retries
  // without it, which needs cls[i] to be a letter: it is not, so that retry always fails)
  {
    size_t j = i;
    if (cls[i] != CharClass::Letter && cls[i] != CharClass::Number && cls[i] != CharClass::Newline) ++j;
    if (j < n && cls[j] == CharClass::Letter) {
      while (j < n && cls[j] == CharClass::Letter) ++j;
      return j;
    }
  }
  // \p{N}
  if (cls[i] == CharClass::Number) return i + 1;
  // " ?[^\s\p{L}\p{N}]+[\r\n]*"  (a space is \s, so dropping the optional space never helps)
  {
    size_t j = (d.cp[i] == ' ') ? i + 1 : i;
    if (j < n && cls[j] == CharClass::Other) {
      while (j < n && cls[j] == CharClass::Other) ++j;
      while (j < n && cls[j] == CharClass::Newline) ++j;
      return j;
    }
  }
  // Only a whitespace character can be left here.
  OE_DCHECK(is_ws(cls[i]), "unclassified character at {}", i);
  size_t run_end = i;
  while (run_end < n && is_ws(cls[run_end])) ++run_end;
  // \s*[\r\n]+ : \s* gives back characters until [\r\n]+ can match, i.e. it ends after the run's last newline.
  for (size_t k = run_end; k > i; --k) {
    if (cls[k - 1] == CharClass::Newline) return k;
  }
  // \s+(?!\S) : the whole run at the end of the text; otherwise the run minus its last character, whose
  // successor is then whitespace. A single whitespace character before a non-space falls through to \s+.
  if (run_end == n) return n;
  if (run_end - 1 > i) return run_end - 1;
  return run_end;  // \s+
}

}  // namespace

void pretokenize_qwen2(std::string_view text, std::vector<std::string_view>& out) {
  Decoded d;
  d.cp.reserve(text.size());
  d.cls.reserve(text.size());
  d.offset.reserve(text.size() + 1);
  for (size_t pos = 0; pos < text.size();) {
    d.offset.push_back(pos);
    const char32_t cp = next_code_point(text, pos);
    d.cp.push_back(cp);
    d.cls.push_back(classify(cp));
  }
  d.offset.push_back(text.size());
  const size_t n = d.cp.size();
  for (size_t i = 0; i < n;) {
    const size_t end = match_at(d, i, n);
    OE_DCHECK(end > i && end <= n, "empty pre-token at {}", i);
    out.push_back(text.substr(d.offset[i], d.offset[end] - d.offset[i]));
    i = end;
  }
}

}  // namespace oe::text
