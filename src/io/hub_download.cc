#include "io/hub_download.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/hub.h"

namespace oe::io {
namespace {

namespace fs = std::filesystem;

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

// A repository id is owner/name of [A-Za-z0-9._-], neither part "." or "..".
void check_repo_id(const std::string& id) {
  auto slash = id.find('/');
  bool ok = slash != std::string::npos && slash > 0 && slash + 1 < id.size() && id.find('/', slash + 1) == std::string::npos;
  for (char c : id) ok &= std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '-' || c == '_' || c == '.';
  ok = ok && id.substr(0, slash) != "." && id.substr(0, slash) != ".." && id.substr(slash + 1) != "." &&
       id.substr(slash + 1) != "..";
  if (!ok) throw InvalidInput(fmt::format("'{}' is not a Hugging Face model id (owner/name)", id));
}

// A file name from the server must stay inside the snapshot folder.
void check_relative_path(const std::string& p) {
  fs::path path(p);
  bool ok = !p.empty() && path.is_relative() && p.find('\\') == std::string::npos;
  for (const auto& part : path) ok &= part != ".." && part != ".";
  if (!ok) throw InvalidInput(fmt::format("the Hub answered with an unsafe file name '{}'", p));
}

std::string url_escape_path(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~')
      out += static_cast<char>(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

void curl_global() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  std::string body;           // for text requests
  std::FILE* file = nullptr;  // for downloads
  std::map<std::string, std::string> headers;  // lower-case names, last value
  const DownloadOptions* options = nullptr;
  std::string name;
  int64_t offset = 0;
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  if (t->file) return std::fwrite(data, size, n, t->file) * size;
  t->body.append(data, size * n);
  return size * n;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string line(data, size * n);
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string key = line.substr(0, colon), value = line.substr(colon + 1);
    for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    value.erase(0, value.find_first_not_of(" \t"));
    value.erase(value.find_last_not_of(" \t\r\n") + 1);
    t->headers[key] = value;
  }
  return size * n;
}

int on_progress(void* user, curl_off_t total, curl_off_t done, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (t->options && t->options->progress && t->file)
    t->options->progress(t->name, t->offset + done, total > 0 ? t->offset + total : 0);
  return 0;
}

// Performs a GET; returns the HTTP status. `range_from` > 0 asks for the bytes from there on.
long perform(const std::string& url, Transfer& t, const DownloadOptions& o, int64_t range_from = 0) {
  curl_global();
  CURL* c = curl_easy_init();
  if (!c) throw IoError("cannot initialise libcurl");
  curl_slist* hdrs = nullptr;
  const std::string token = o.token.empty() ? env_or("HF_TOKEN", "") : o.token;
  if (!token.empty()) hdrs = curl_slist_append(hdrs, ("Authorization: Bearer " + token).c_str());
  hdrs = curl_slist_append(hdrs, "User-Agent: omni-embed");
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);   // abort a transfer stalled for a minute
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  if (range_from > 0) curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, static_cast<curl_off_t>(range_from));
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(c);
  if (rc != CURLE_OK)
    throw IoError(fmt::format("{}: {} (run the same command again to resume)", url, curl_easy_strerror(rc)));
  return status;
}

std::string blob_name(const Transfer& t, const std::string& fallback) {
  for (const char* key : {"x-linked-etag", "etag"}) {
    auto it = t.headers.find(key);
    if (it == t.headers.end()) continue;
    std::string v = it->second;
    if (v.rfind("W/", 0) == 0) v = v.substr(2);
    v.erase(std::remove(v.begin(), v.end(), '"'), v.end());
    bool ok = !v.empty();
    for (char ch : v) ok &= std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_';
    if (ok) return v;
  }
  return fallback;
}

// Downloads one file into blobs/ (resuming blobs/<key>.incomplete) and returns the blob's path.
fs::path download_file(const std::string& url, const fs::path& blobs, const std::string& key, const std::string& name,
                       const DownloadOptions& o) {
  const fs::path partial = blobs / (key + ".incomplete");
  int64_t have = fs::exists(partial) ? static_cast<int64_t>(fs::file_size(partial)) : 0;
  Transfer t;
  t.options = &o;
  t.name = name;
  t.offset = have;
  t.file = std::fopen(partial.c_str(), "ab");
  if (!t.file) throw IoError(fmt::format("cannot write {}", partial.string()));
  long status = 0;
  try {
    status = perform(url, t, o, have);
  } catch (...) {
    std::fclose(t.file);
    throw;
  }
  std::fclose(t.file);
  if (have > 0 && status == 200) {  // the server ignored the range: what came is the whole file
    fs::path whole = blobs / (key + ".whole");
    std::ifstream in(partial, std::ios::binary);
    in.seekg(have);
    std::ofstream out(whole, std::ios::binary);
    out << in.rdbuf();
    out.close();
    fs::rename(whole, partial);
  } else if (status == 416 && have > 0) {  // already complete
  } else if (status >= 400) {
    if (have == 0) fs::remove(partial);
    throw IoError(fmt::format("{}: HTTP {}{}", url, status,
                              status == 401 || status == 403 ? " (a gated model: accept its license on the Hub and set "
                                                               "HF_TOKEN)"
                                                             : ""));
  }
  const fs::path blob = blobs / blob_name(t, key);
  fs::rename(partial, blob);
  return blob;
}

}  // namespace

fs::path download_model(const std::string& id, const std::string& revision, const DownloadOptions& o) {
  check_repo_id(id);
  check_relative_path(revision);
  std::string endpoint = o.endpoint.empty() ? env_or("HF_ENDPOINT", "https://huggingface.co") : o.endpoint;
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
  const std::string rev = url_escape_path(revision);

  Transfer info;
  const std::string api = fmt::format("{}/api/models/{}/revision/{}", endpoint, id, rev);
  long status = perform(api, info, o);
  if (status != 200)
    throw IoError(fmt::format("{}: HTTP {}{}", api, status, status == 404 ? " (no such model or revision)" : ""));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(info.body);
  } catch (const nlohmann::json::exception& e) {
    throw IoError(fmt::format("{}: the answer is not JSON ({})", api, e.what()));
  }
  if (!j.contains("sha") || !j["sha"].is_string() || !j.contains("siblings") || !j["siblings"].is_array())
    throw IoError(fmt::format("{}: the answer has no \"sha\" and \"siblings\"", api));
  const std::string sha = j["sha"].get<std::string>();
  check_relative_path(sha);

  const fs::path repo = hf_hub_cache_dir() / ("models--" + id.substr(0, id.find('/')) + "--" + id.substr(id.find('/') + 1));
  const fs::path blobs = repo / "blobs", snapshot = repo / "snapshots" / sha;
  fs::create_directories(blobs);
  fs::create_directories(snapshot);
  for (const auto& s : j["siblings"]) {
    if (!s.contains("rfilename") || !s["rfilename"].is_string()) continue;
    const std::string name = s["rfilename"].get<std::string>();
    check_relative_path(name);
    const fs::path link = snapshot / name;
    if (fs::exists(link)) continue;  // complete from an earlier run
    const std::string url = fmt::format("{}/{}/resolve/{}/{}", endpoint, id, sha, url_escape_path(name));
    std::string key = sha + "-";
    for (char c : name) key += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    const fs::path blob = download_file(url, blobs, key, name, o);
    fs::create_directories(link.parent_path());
    std::error_code ec;
    fs::remove(link, ec);
    fs::create_symlink(fs::relative(blob, link.parent_path()), link);
  }
  if (revision != sha) {
    fs::create_directories(repo / "refs");
    std::ofstream(repo / "refs" / revision) << sha;
  }
  return snapshot;
}

}  // namespace oe::io
