// resolve_model_path against a fake Hugging Face cache laid out as huggingface_hub writes it.
#include "io/hub.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "io/io_test_util.h"

namespace oe::io {
namespace {

namespace fs = std::filesystem;
using testing::ScopedEnv;
using testing::TempDir;

const std::string HASH_MAIN = "0123456789abcdef0123456789abcdef01234567";
const std::string HASH_V1 = "fedcba9876543210fedcba9876543210fedcba98";

// cache/models--owner--name with refs/main -> HASH_MAIN and refs/v1 -> HASH_V1, each snapshot with config.json.
void make_cached_model(const fs::path& cache, const std::string& folder) {
  const fs::path repo = cache / folder;
  fs::create_directories(repo / "refs");
  testing::write_bytes(repo / "refs" / "main", HASH_MAIN);  // huggingface_hub writes no newline
  testing::write_bytes(repo / "refs" / "v1", HASH_V1 + "\n");
  for (const std::string& h : {HASH_MAIN, HASH_V1}) {
    fs::create_directories(repo / "snapshots" / h);
    testing::write_bytes(repo / "snapshots" / h / "config.json", "{}");
  }
}

// Clears every variable that picks the cache, so each test states its own.
struct HubEnv {
  ScopedEnv a{"HF_HUB_CACHE", nullptr}, b{"HF_HOME", nullptr}, c{"XDG_CACHE_HOME", nullptr};
};

std::string error_of(const std::string& model, const std::string& revision = "main") {
  try {
    resolve_model_path(model, revision);
  } catch (const InvalidInput& e) {
    return e.what();
  }
  return "(no InvalidInput)";
}

TEST(Hub, LocalFolderUsedAsIs) {
  HubEnv env;
  TempDir dir;
  testing::write_bytes(dir / "config.json", "{}");
  EXPECT_EQ(resolve_model_path(dir.path().string()), dir.path());
  fs::create_directories(dir / "empty");
  const std::string msg = error_of((dir / "empty").string());
  EXPECT_NE(msg.find((dir / "empty").string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
}

TEST(Hub, FromHfHubCache) {
  HubEnv env;
  TempDir dir;
  make_cached_model(dir / "cache", "models--nvidia--omni-embed-nemotron-3b");
  ScopedEnv hub("HF_HUB_CACHE", (dir / "cache").c_str());
  ScopedEnv home("HF_HOME", (dir / "elsewhere").c_str());  // HF_HUB_CACHE wins
  const fs::path snaps = dir / "cache" / "models--nvidia--omni-embed-nemotron-3b" / "snapshots";
  EXPECT_EQ(resolve_model_path("nvidia/omni-embed-nemotron-3b"), snaps / HASH_MAIN);
  EXPECT_EQ(resolve_model_path("nvidia/omni-embed-nemotron-3b", "v1"), snaps / HASH_V1);
  EXPECT_EQ(resolve_model_path("nvidia/omni-embed-nemotron-3b", HASH_V1), snaps / HASH_V1);  // a commit hash
}

TEST(Hub, FromHfHomeXdgAndHome) {
  HubEnv env;
  TempDir dir;
  make_cached_model(dir / "hf" / "hub", "models--a--b");
  {
    ScopedEnv home("HF_HOME", (dir / "hf").c_str());
    EXPECT_EQ(resolve_model_path("a/b"), dir / "hf" / "hub" / "models--a--b" / "snapshots" / HASH_MAIN);
  }
  make_cached_model(dir / "xdg" / "huggingface" / "hub", "models--a--b");
  {
    ScopedEnv xdg("XDG_CACHE_HOME", (dir / "xdg").c_str());
    EXPECT_EQ(resolve_model_path("a/b"),
              dir / "xdg" / "huggingface" / "hub" / "models--a--b" / "snapshots" / HASH_MAIN);
  }
  make_cached_model(dir / "home" / ".cache" / "huggingface" / "hub", "models--a--b");
  {
    ScopedEnv home("HOME", (dir / "home").c_str());
    EXPECT_EQ(resolve_model_path("a/b"),
              dir / "home" / ".cache" / "huggingface" / "hub" / "models--a--b" / "snapshots" / HASH_MAIN);
  }
}

TEST(Hub, NotFoundSaysWhereItLookedAndWhatToDo) {
  HubEnv env;
  TempDir dir;
  ScopedEnv hub("HF_HUB_CACHE", (dir / "cache").c_str());
  const std::string msg = error_of("owner/name");
  for (const std::string& needle :
       {(dir / "cache").string(), std::string("$HF_HUB_CACHE"), std::string("models--owner--name/refs/main"),
        std::string("huggingface-cli download owner/name"), std::string("git lfs clone"), std::string("--model"),
        std::string("HF_HOME"), std::string("make-test-model")}) {
    EXPECT_NE(msg.find(needle), std::string::npos) << "'" << needle << "' not in: " << msg;
  }
  // An unknown revision of a cached model is also "not found", naming the revision.
  make_cached_model(dir / "cache", "models--owner--name");
  const std::string rev = error_of("owner/name", "v9");
  EXPECT_NE(rev.find("refs/v9"), std::string::npos) << rev;
}

TEST(Hub, IncompleteSnapshots) {
  HubEnv env;
  TempDir dir;
  ScopedEnv hub("HF_HUB_CACHE", dir.path().c_str());
  make_cached_model(dir.path(), "models--o--n");
  fs::remove(dir / "models--o--n" / "snapshots" / HASH_MAIN / "config.json");
  std::string msg = error_of("o/n");
  EXPECT_NE(msg.find((dir / "models--o--n" / "snapshots" / HASH_MAIN).string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  fs::remove_all(dir / "models--o--n" / "snapshots" / HASH_V1);
  msg = error_of("o/n", "v1");
  EXPECT_NE(msg.find(HASH_V1), std::string::npos) << msg;
  EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;
}

TEST(Hub, NeitherFolderNorId) {
  HubEnv env;
  TempDir dir;
  const std::string msg = error_of((dir / "a" / "b").string());
  EXPECT_NE(msg.find("no such folder"), std::string::npos) << msg;
  testing::write_bytes(dir / "model.safetensors", "x");
  EXPECT_NE(error_of((dir / "model.safetensors").string()).find("is a file"), std::string::npos);
}

// refs/<revision> names a snapshot by its commit; a ref holding anything else (a path out of the cache), or a
// revision that is a path, is refused and never followed.
TEST(Hub, RefsThatAreNotCommitsAreNeverFollowed) {
  HubEnv env;
  TempDir dir;
  ScopedEnv hub("HF_HUB_CACHE", (dir / "cache").c_str());
  make_cached_model(dir / "cache", "models--owner--name");
  fs::create_directories(dir / "outside");
  testing::write_bytes(dir / "outside" / "config.json", "{}");
  testing::write_bytes(dir / "cache" / "models--owner--name" / "refs" / "main", "../../../outside");
  const std::string m = error_of("owner/name");
  EXPECT_NE(m.find("does not hold a commit hash"), std::string::npos) << m;
  EXPECT_NE(error_of("owner/name", "../../../../outside").find("is not a branch, tag or commit name"),
            std::string::npos);
  EXPECT_EQ(resolve_model_path("owner/name", "v1"),
            dir / "cache" / "models--owner--name" / "snapshots" / HASH_V1);  // a good ref still resolves
}

}  // namespace
}  // namespace oe::io
