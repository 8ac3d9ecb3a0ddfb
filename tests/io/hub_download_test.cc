// download_model against a local stand-in for the Hub (tests/io/fake_hub.py): the cache layout, resuming a cut
// transfer, skipping complete files, and refusing unsafe names from the server.
#include "io/hub_download.h"

#include <signal.h>

#include <cstdio>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "io/hub.h"
#include "io/io_test_util.h"

namespace oe::io {
namespace {

namespace fs = std::filesystem;
using testing::ScopedEnv;
using testing::TempDir;

const std::string SHA = "0123456789abcdef0123456789abcdef01234567";

// Runs fake_hub.py in the background; its log goes to `log`.
class FakeHub {
 public:
  FakeHub(const fs::path& root, const fs::path& log, const std::string& extra = "") {
    std::string cmd = fmt::format("{} {}/tests/io/fake_hub.py --root {} --repo owner/name --sha {} --lifetime 60 {} "
                                  "2>{} &",
                                  OE_PYTHON, OE_SOURCE_DIR, root.string(), SHA, extra, log.string());
    pipe_ = popen(cmd.c_str(), "r");
    char line[64] = {0};
    if (std::fgets(line, sizeof line, pipe_)) std::sscanf(line, "%d %d", &port_, &pid_);  // "<port> <pid>"
  }
  ~FakeHub() {
    if (pid_ > 0) kill(pid_, SIGTERM);
    if (pipe_) pclose(pipe_);
  }
  std::string endpoint() const { return fmt::format("http://127.0.0.1:{}", port_); }
  int port() const { return port_; }

 private:
  FILE* pipe_ = nullptr;
  int pid_ = 0, port_ = 0;
};

void make_repo(const fs::path& root) {
  fs::create_directories(root / "1_Pooling");
  testing::write_bytes(root / "config.json", R"({"model_type": "nvomniembed"})");
  testing::write_bytes(root / "1_Pooling" / "config.json", R"({"pooling_mode_mean_tokens": true})");
  std::string big(300000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + 3);
  testing::write_bytes(root / "model.safetensors", big);
}

TEST(HubDownload, WritesTheCacheLayoutAndResumesACutTransfer) {
  TempDir tmp;
  const fs::path root = tmp.path() / "repo", log = tmp.path() / "hub.log";
  make_repo(root);
  FakeHub hub(root, log, "--cut-after 100000");
  ASSERT_GT(hub.port(), 0);
  ScopedEnv cache("HF_HUB_CACHE", (tmp.path() / "cache").c_str());
  DownloadOptions o;
  o.endpoint = hub.endpoint();
  // The first attempt is cut in the middle of model.safetensors: an IoError that says how to resume.
  bool cut = false;
  try {
    download_model("owner/name", "main", o);
  } catch (const IoError& e) {
    cut = true;
    EXPECT_NE(std::string(e.what()).find("resume"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(cut);
  fs::path snapshot = download_model("owner/name", "main", o);  // completes, with a Range request
  EXPECT_EQ(snapshot, tmp.path() / "cache" / "models--owner--name" / "snapshots" / SHA);
  for (const char* f : {"config.json", "1_Pooling/config.json", "model.safetensors"}) {
    EXPECT_TRUE(fs::is_symlink(snapshot / f)) << f;
    EXPECT_EQ(testing::read_bytes(snapshot / f), testing::read_bytes(root / f)) << f;
  }
  EXPECT_EQ(testing::read_bytes(tmp.path() / "cache" / "models--owner--name" / "refs" / "main"), SHA);
  EXPECT_EQ(resolve_model_path("owner/name"), snapshot);  // the resolver finds what the downloader wrote
  const std::string server_log = testing::read_bytes(log);
  EXPECT_NE(server_log.find("range=bytes="), std::string::npos) << server_log;
  // A third run downloads nothing.
  const size_t requests = std::count(server_log.begin(), server_log.end(), '\n');
  download_model("owner/name", "main", o);
  const std::string after = testing::read_bytes(log);
  EXPECT_EQ(static_cast<size_t>(std::count(after.begin(), after.end(), '\n')), requests + 1);  // the API call only
}

TEST(HubDownload, RefusesUnsafeNamesAndBadIds) {
  TempDir tmp;
  const fs::path root = tmp.path() / "repo";
  make_repo(root);
  FakeHub hub(root, tmp.path() / "hub.log", "--bad-name ../../evil");
  ScopedEnv cache("HF_HUB_CACHE", (tmp.path() / "cache").c_str());
  DownloadOptions o;
  o.endpoint = hub.endpoint();
  EXPECT_THROW(download_model("owner/name", "main", o), InvalidInput);
  EXPECT_FALSE(fs::exists(tmp.path() / "evil"));
  EXPECT_THROW(download_model("../x", "main", o), InvalidInput);
  EXPECT_THROW(download_model("owner/name", "../../x", o), InvalidInput);
}

TEST(HubDownload, UnknownModelAndNoServerAreClearErrors) {
  TempDir tmp;
  const fs::path root = tmp.path() / "repo";
  make_repo(root);
  FakeHub hub(root, tmp.path() / "hub.log");
  ScopedEnv cache("HF_HUB_CACHE", (tmp.path() / "cache").c_str());
  DownloadOptions o;
  o.endpoint = hub.endpoint();
  try {
    download_model("other/model", "main", o);
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("HTTP 404"), std::string::npos) << e.what();
  }
  o.endpoint = "http://127.0.0.1:1";  // nothing listens there
  EXPECT_THROW(download_model("owner/name", "main", o), IoError);
}

}  // namespace
}  // namespace oe::io
