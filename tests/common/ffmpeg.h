// The ffmpeg CLI for test media: generated clips, and quoting of paths in its command lines.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "common/run_command.h"

namespace oe::testing {

// A path in single quotes for a shell command line.
inline std::string q(const std::filesystem::path& p) {
  std::string s = p.string();
  s.insert(s.begin(), '\'');
  s.push_back('\'');
  return s;
}

// Runs `ffmpeg <args>` quietly; records a failure with the command and its output when it fails.
inline bool ffmpeg(const std::string& args) {
  const std::string cmd = "ffmpeg -hide_banner -nostdin -loglevel error -y " + args;
  std::string out;
  const int rc = run_command(cmd, &out);
  if (rc != 0) ADD_FAILURE() << "ffmpeg failed (exit " << rc << "): " << cmd << "\n" << out.substr(0, 2000);
  return rc == 0;
}

}  // namespace oe::testing
