// What the fuzz targets share: the rule that decides which outcomes of a parser are fine, and a scratch folder of
// the process for the parsers that read only files.
//
// A parser given any bytes must either succeed or throw one of the typed errors of core/error.h for bad input
// (InvalidInput, IoError, Unsupported). Everything else is a finding and ends the process so that libFuzzer keeps
// the input: a crash or a sanitizer report, any other exception (it escapes the target uncaught: std::terminate
// prints it), an InternalError (a failed OE_CHECK: programmer invariants must never be reachable from input), and,
// for the file APIs that promise it, an error whose message does not name the file.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "core/error.h"

namespace oe::fuzz {

[[noreturn]] inline void finding(std::string_view what, std::string_view message) {
  std::fprintf(stderr, "\n==fuzz== %.*s: %.*s\n", static_cast<int>(what.size()), what.data(),
               static_cast<int>(message.size()), message.data());
  std::abort();
}

// Whether to print the expected errors too (OE_FUZZ_VERBOSE=1, to see what a seed reaches when run by hand).
inline bool verbose() {
  static const bool on = [] {
    const char* v = std::getenv("OE_FUZZ_VERBOSE");
    return v && *v && *v != '0';
  }();
  return on;
}

// Runs f(); a typed input error is an expected outcome, an InternalError is a finding. With `name` non-empty, the
// error's message must also contain it (the file the parser was given).
template <typename F>
void expect_clean(F&& f, std::string_view name = {}) {
  try {
    f();
    if (verbose()) std::fprintf(stderr, "ok\n");
  } catch (const Error& e) {
    if (verbose()) std::fprintf(stderr, "%s: %s\n", error_kind_name(e.kind()), e.what());
    if (e.kind() == ErrorKind::Internal) finding("internal error reached from input", e.what());
    if (!name.empty() && std::string_view(e.what()).find(name) == std::string_view::npos) {
      finding("error does not name the input", e.what());
    }
  }
}

// A folder of this process under $TMPDIR (or /tmp), removed when the process exits normally. The path is never
// destroyed, so the exit handler can still read it.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path* const dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/oe-fuzz.XXXXXX";
    if (!::mkdtemp(pattern.data())) finding("setup", "cannot create a scratch folder");
    return new std::filesystem::path(pattern);
  }();
  static const bool cleanup_registered = std::atexit([] {
    std::error_code ec;
    std::filesystem::remove_all(*dir, ec);
  }) == 0;
  (void)cleanup_registered;
  return *dir;
}

// Writes the input to scratch_dir()/`name` (the same file for every input of the process) and returns its path.
inline std::filesystem::path write_input(const std::string& name, const uint8_t* data, size_t size) {
  const std::filesystem::path path = scratch_dir() / name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) finding("setup", "cannot write " + path.string());
  return path;
}

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace oe::fuzz
