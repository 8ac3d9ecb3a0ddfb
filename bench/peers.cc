// The peers of omni-embed-bench and the JSON-lines reader of processes (peers.h).
#include "peers.h"

#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

#include "core/error.h"

namespace oe::bench {
namespace {

using nlohmann::json;
using Rows = std::vector<json>;

// A peer script of this source tree, quoted for the shell.
std::string script(const char* name) {
  return shell_quote((std::filesystem::path(OE_SOURCE_DIR) / "bench" / "peers" / name).string());
}

// Runs one peer command and adds its rows, or a row saying it was skipped when it printed none (a missing peer never
// fails the benchmark).
void add_peer_rows(const std::string& what, const std::string& skipped_name, const std::string& cmd, Rows& rows) {
  std::fprintf(stderr, "bench: peer %s\n", what.c_str());
  Rows r = run_json_lines(cmd);
  if (r.empty()) r.push_back(json{{"peer", skipped_name}, {"skipped", "the peer script printed no result"}});
  rows.insert(rows.end(), r.begin(), r.end());
}

// The command of a peer's text rows: "torch" or "llama.cpp".
std::string text_command(const std::string& peer, const BenchArgs& a, int threads) {
  if (peer == "torch")
    return fmt::format("/usr/bin/python3 {} --tokens {} --threads {} --repeats {}", script("torch_eager.py"),
                       a.tokens, threads, a.repeats);
  return fmt::format("bash {} --tokens {} --threads {}", script("llama_cpp.sh"), a.tokens, threads);
}

// PyTorch eager on the image, audio and video documents that were asked for.
void add_torch_media_rows(const BenchArgs& a, int threads, Rows& rows) {
  if (a.images != "none")
    add_peer_rows("torch (image documents)", "torch-vision",
                  fmt::format("/usr/bin/python3 {} --images {} --threads {} --repeats {}", script("torch_vision.py"),
                              a.images, threads, a.repeats),
                  rows);
  if (a.audio != "none")
    add_peer_rows("torch (audio documents)", "torch-audio",
                  fmt::format("/usr/bin/python3 {} --audio-seconds {} --threads {} --repeats {}",
                              script("torch_audio.py"), a.audio, threads, a.repeats),
                  rows);
  if (a.video != "none")
    add_peer_rows("torch (video documents)", "torch-video",
                  fmt::format("/usr/bin/python3 {} --video-seconds {} --fusion {} --threads {} --repeats {}",
                              script("torch_video.py"), a.video, a.video_fusion, threads, a.repeats),
                  rows);
}

}  // namespace

Rows run_json_lines(const std::string& cmd) {
  Rows out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[1 << 16];
  while (std::fgets(buf, sizeof buf, p)) {
    try {
      auto j = json::parse(buf);
      if (j.is_object()) out.push_back(j);
    } catch (const json::exception&) {
    }
  }
  pclose(p);
  return out;
}

Rows run_peers(const BenchArgs& a, int threads) {
  Rows rows;
  for (const auto& peer : split(a.peers)) {
    if (peer == "none") continue;
    if (peer != "torch" && peer != "llama.cpp")
      throw InvalidInput(fmt::format("unknown peer '{}': expected torch, llama.cpp or none", peer));
    if (a.tokens != "none") add_peer_rows(peer, peer, text_command(peer, a, threads), rows);  // else media rows only
    if (peer == "torch") add_torch_media_rows(a, threads, rows);
  }
  return rows;
}

}  // namespace oe::bench
