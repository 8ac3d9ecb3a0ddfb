// Tokenizer throughput (not a test: timings are reported, never asserted).
// Usage: tokenizer_bench TOKENIZER_JSON [ENGLISH_TEXT_FILE]
// Without a text file it uses the doc comments of the npm oracle package's source as English prose.
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "core/timer.h"
#include "text/tokenizer.h"

namespace {

std::string read_all(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s TOKENIZER_JSON [ENGLISH_TEXT_FILE]\n", argv[0]);
    return 2;
  }
  oe::Timer load_timer;
  const auto tok = oe::text::Tokenizer::from_file(argv[1]);
  const double load_s = load_timer.seconds();
  std::string base = argc > 2 ? read_all(argv[2]) : std::string();
  if (base.empty()) {
    for (int i = 0; i < 2000; ++i)
      base += "The tokenizer splits text into pre-tokens, maps bytes to characters and merges pairs by rank. ";
  }
  std::string text;
  while (text.size() < (1u << 20)) text += base;
  tok.encode(base);  // warm-up
  oe::Timer t;
  const auto ids = tok.encode(text);
  const double english = static_cast<double>(text.size()) / 1e6 / t.seconds();
  // Worst case for the word cache: random lower-case words, none repeated.
  std::mt19937 rng(3);
  std::string words;
  while (words.size() < (256u << 10)) {
    for (int n = 3 + static_cast<int>(rng() % 10); n > 0; --n) words += static_cast<char>('a' + rng() % 26);
    words += ' ';
  }
  oe::Timer t2;
  tok.encode(words);
  const double random = static_cast<double>(words.size()) / 1e6 / t2.seconds();
  std::printf("tokenizer: load %.3f s; text %.2f MB/s (%.2f bytes/token); random words %.2f MB/s (1 thread)\n", load_s,
              english, static_cast<double>(text.size()) / static_cast<double>(ids.size()), random);
  return 0;
}
