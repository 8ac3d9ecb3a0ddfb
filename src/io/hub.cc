#include "io/hub.h"

#include "io/read.h"

#include <algorithm>

#include <cctype>
#include <cstdlib>

#include <fmt/format.h>

#include "core/error.h"
#include "io/json.h"

namespace oe::io {

namespace fs = std::filesystem;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

// "owner/name" or a legacy bare "name": letters, digits, '-', '_', '.', at most one '/', no empty part, no "..".
bool looks_like_repo_id(const std::string& s) {
  if (s.empty() || s.size() > 200 || s.find("..") != std::string::npos) return false;
  int slashes = 0;
  for (char c : s) {
    if (c == '/') {
      ++slashes;
    } else if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return slashes <= 1 && s.front() != '/' && s.back() != '/' && s.front() != '.';
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

bool is_commit_hash(const std::string& s) {
  if (s.size() != 40) return false;
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

fs::path checked_model_folder(const fs::path& dir, const std::string& what) {
  std::error_code ec;
  if (!fs::is_regular_file(dir / "config.json", ec)) {
    throw InvalidInput(fmt::format("{} {} has no config.json: not a Hugging Face model folder (or an incomplete "
                                   "download)",
                                   what, dir.string()));
  }
  return dir;
}

std::string how_to_get(const std::string& id) {
  return fmt::format(
      "To get the weights, run `omni-embed download {0}` (or `huggingface-cli download {0}`, or "
      "`git lfs clone https://huggingface.co/{0}` and pass the folder with --model), or set HF_HOME (or HF_HUB_CACHE) "
      "to a cache that holds it. To try "
      "the tool without the real weights, `omni-embed make-test-model` writes a random-weight model folder to pass "
      "with --model.",
      id);
}

}  // namespace

fs::path hf_hub_cache_dir(std::string* source) {
  auto pick = [source](fs::path p, const char* rule) {
    if (source) *source = rule;
    return p;
  };
  if (std::string v = env("HF_HUB_CACHE"); !v.empty()) return pick(v, "$HF_HUB_CACHE");
  if (std::string v = env("HF_HOME"); !v.empty()) return pick(fs::path(v) / "hub", "$HF_HOME/hub");
  if (std::string v = env("XDG_CACHE_HOME"); !v.empty()) {
    return pick(fs::path(v) / "huggingface" / "hub", "$XDG_CACHE_HOME/huggingface/hub");
  }
  return pick(fs::path(env("HOME")) / ".cache" / "huggingface" / "hub", "~/.cache/huggingface/hub");
}

fs::path resolve_model_path(const std::string& model, const std::string& revision) {
  std::error_code ec;
  const fs::path local(model);
  if (fs::is_directory(local, ec)) return checked_model_folder(local, "model folder");
  if (fs::exists(local, ec)) {
    throw InvalidInput(fmt::format("--model {} is a file; expected a model folder (holding config.json and the "
                                   "safetensors) or a Hugging Face id such as owner/name",
                                   model));
  }
  if (!looks_like_repo_id(model)) {
    throw InvalidInput(fmt::format("--model {}: no such folder, and it is not a Hugging Face id (owner/name)", model));
  }

  std::string source;
  const fs::path cache = hf_hub_cache_dir(&source);
  std::string folder = "models--" + model;
  for (size_t p = folder.find('/'); p != std::string::npos; p = folder.find('/')) folder.replace(p, 1, "--");
  const fs::path repo = cache / folder;
  // A revision names a file under refs/ (a branch or tag, which may hold '/'), never a path out of it.
  const fs::path rev_path(revision);
  if (revision.empty() || rev_path.is_absolute() ||
      std::any_of(rev_path.begin(), rev_path.end(), [](const fs::path& part) { return part == ".." || part == "."; }))
    throw InvalidInput(fmt::format("--revision '{}' is not a branch, tag or commit name", revision));
  const fs::path ref = repo / "refs" / revision;

  std::string hash;
  if (fs::is_regular_file(ref, ec)) {
    hash = trim(read_file(ref, ReadCap{4096, "revision file"}));
    // The file holds the commit of the snapshot folder; anything else (a path, "../x") is never followed.
    if (!is_commit_hash(hash))
      throw InvalidInput(fmt::format("model '{}': {} does not hold a commit hash (40 hex digits); {}", model,
                                     ref.string(), how_to_get(model)));
  } else if (is_commit_hash(revision) && fs::is_directory(repo / "snapshots" / revision, ec)) {
    hash = revision;
  }
  if (hash.empty()) {
    throw InvalidInput(fmt::format(
        "model '{}' (revision {}) not found: there is no local folder '{}', and the Hugging Face cache {} (chosen "
        "by {}) has no {}. {}",
        model, revision, model, cache.string(), source, ref.string(), how_to_get(model)));
  }
  const fs::path snapshot = repo / "snapshots" / hash;
  if (!fs::is_directory(snapshot, ec)) {
    throw InvalidInput(fmt::format("model '{}': {} names snapshot {}, but {} does not exist (incomplete download). {}",
                                   model, ref.string(), hash, snapshot.string(), how_to_get(model)));
  }
  return checked_model_folder(snapshot, fmt::format("model '{}' snapshot", model));
}

}  // namespace oe::io
