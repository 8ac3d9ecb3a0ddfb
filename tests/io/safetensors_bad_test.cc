// Malformed safetensors files and checkpoint folders, crafted byte by byte: each must fail at open with the right
// exception kind and a message naming the file and the tensor.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "io/io_test_util.h"
#include "io/safetensors.h"

namespace oe::io {
namespace {

using testing::TempDir;

// A safetensors file: 8-byte header length (the real one unless overridden), the header text, the data bytes.
std::filesystem::path craft(const TempDir& dir, const std::string& header, size_t data_bytes,
                            int64_t header_len = -1, const std::string& name = "bad.safetensors") {
  const auto path = dir / name;
  const uint64_t n = header_len < 0 ? header.size() : static_cast<uint64_t>(header_len);
  testing::write_bytes(path, testing::le64(n) + header + std::string(data_bytes, '\x01'));
  return path;
}

// Opens `path` expecting exception type E whose message contains every one of `needles`.
template <typename E>
void expect_open_error(const std::filesystem::path& path, std::initializer_list<std::string> needles) {
  try {
    SafetensorsFile::open(path);
    ADD_FAILURE() << "no error for " << path;
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const std::string& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

TEST(SafetensorsBad, FileShorterThanHeaderLength) {
  TempDir dir;
  const auto path = dir / "tiny.safetensors";
  testing::write_bytes(path, "abc");
  expect_open_error<InvalidInput>(path, {"tiny.safetensors", "too short"});
}

TEST(SafetensorsBad, HeaderLengthLargerThanFile) {
  TempDir dir;
  const std::string h = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  expect_open_error<InvalidInput>(craft(dir, h, 4, /*header_len=*/1000), {"bad.safetensors", "header length 1000"});
  expect_open_error<InvalidInput>(craft(dir, h, 4, /*header_len=*/int64_t(1) << 62), {"bad.safetensors", "larger"});
}

TEST(SafetensorsBad, HeaderNotJsonOrNotObject) {
  TempDir dir;
  expect_open_error<InvalidInput>(craft(dir, R"({"a": {"dtype": "F32",)", 0), {"bad.safetensors", "not valid JSON"});
  expect_open_error<InvalidInput>(craft(dir, "[1, 2, 3]", 0), {"bad.safetensors", "must be a JSON object"});
  expect_open_error<InvalidInput>(craft(dir, "", 0), {"bad.safetensors", "not valid JSON"});
  // Found by fuzz/safetensors.cc: a number past double's range is nlohmann's out_of_range, not a parse error.
  expect_open_error<InvalidInput>(craft(dir, R"({"a":{"dtype":"F32","shape":[1e999],"data_offsets":[0,4]}})", 4),
                                  {"bad.safetensors", "not valid JSON", "1e999"});
}

TEST(SafetensorsBad, EntryMissingField) {
  TempDir dir;
  expect_open_error<InvalidInput>(craft(dir, R"({"w.q":{"shape":[1],"data_offsets":[0,4]}})", 4),
                                  {"bad.safetensors", "'w.q'", "dtype"});
  expect_open_error<InvalidInput>(craft(dir, R"({"w.k":{"dtype":"F32","data_offsets":[0,4]}})", 4),
                                  {"bad.safetensors", "'w.k'", "shape"});
  expect_open_error<InvalidInput>(craft(dir, R"({"w.v":{"dtype":"F32","shape":[1]}})", 4),
                                  {"bad.safetensors", "'w.v'", "data_offsets"});
  expect_open_error<InvalidInput>(craft(dir, R"({"w.o":[1,2]})", 4), {"bad.safetensors", "'w.o'", "object"});
}

TEST(SafetensorsBad, UnknownDtype) {
  TempDir dir;
  expect_open_error<InvalidInput>(craft(dir, R"({"emb":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}})", 4),
                                  {"bad.safetensors", "'emb'", "F99"});
  expect_open_error<InvalidInput>(craft(dir, R"({"emb":{"dtype":7,"shape":[1],"data_offsets":[0,4]}})", 4),
                                  {"bad.safetensors", "'emb'", "dtype"});
  // A real safetensors dtype that this engine does not handle is Unsupported, not malformed.
  expect_open_error<Unsupported>(craft(dir, R"({"emb":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", 8),
                                 {"bad.safetensors", "'emb'", "F64"});
}

TEST(SafetensorsBad, BadShape) {
  TempDir dir;
  expect_open_error<InvalidInput>(craft(dir, R"({"n":{"dtype":"F32","shape":[-1,2],"data_offsets":[0,4]}})", 4),
                                  {"bad.safetensors", "'n'", "non-negative"});
  expect_open_error<InvalidInput>(craft(dir, R"({"n":{"dtype":"F32","shape":[2.5],"data_offsets":[0,4]}})", 4),
                                  {"bad.safetensors", "'n'", "non-negative integers"});
  expect_open_error<InvalidInput>(craft(dir, R"({"n":{"dtype":"F32","shape":"2","data_offsets":[0,4]}})", 4),
                                  {"bad.safetensors", "'n'", "array"});
  expect_open_error<InvalidInput>(
      craft(dir, R"({"n":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", 4),
      {"bad.safetensors", "'n'", "too large"});
}

TEST(SafetensorsBad, BadOffsets) {
  TempDir dir;
  expect_open_error<InvalidInput>(craft(dir, R"({"r":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", 8),
                                  {"bad.safetensors", "'r'", "reversed"});
  expect_open_error<InvalidInput>(craft(dir, R"({"r":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", 8),
                                  {"bad.safetensors", "'r'", "non-negative"});
  expect_open_error<InvalidInput>(craft(dir, R"({"r":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 8),
                                  {"bad.safetensors", "'r'", "two"});
  // Truncated: the header promises 16 bytes, the data block holds 12.
  expect_open_error<InvalidInput>(craft(dir, R"({"r":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 12),
                                  {"bad.safetensors", "'r'", "past the end of the data block (12 bytes"});
}

TEST(SafetensorsBad, ByteCountDisagreesWithShape) {
  TempDir dir;
  expect_open_error<InvalidInput>(craft(dir, R"({"m":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,24]}})", 24),
                                  {"bad.safetensors", "'m'", "24 bytes", "needs 12"});
}

TEST(SafetensorsBad, OverlappingTensors) {
  TempDir dir;
  const std::string h = R"({"first":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                        R"("second":{"dtype":"F32","shape":[4],"data_offsets":[12,28]}})";
  expect_open_error<InvalidInput>(craft(dir, h, 28), {"bad.safetensors", "'first'", "'second'", "overlap"});
  // Touching ranges and an empty tensor inside another one's range are fine.
  const std::string ok = R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                         R"("b":{"dtype":"F32","shape":[3],"data_offsets":[16,28]},)"
                         R"("z":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}})";
  EXPECT_EQ(SafetensorsFile::open(craft(dir, ok, 28, -1, "ok.safetensors"))->tensors().size(), 3u);
}

TEST(SafetensorsBad, MetadataNotObject) {
  TempDir dir;
  expect_open_error<InvalidInput>(craft(dir, R"({"__metadata__":[1]})", 0), {"bad.safetensors", "__metadata__"});
}

TEST(SafetensorsBad, UnreadableFileIsIoError) {
  TempDir dir;
  expect_open_error<IoError>(dir / "missing.safetensors", {"missing.safetensors"});
  expect_open_error<IoError>(dir.path(), {dir.path().string()});  // a folder
}

// ---- checkpoint folders ----

template <typename E>
void expect_checkpoint_error(const std::filesystem::path& path, std::initializer_list<std::string> needles) {
  try {
    Checkpoint::open(path);
    ADD_FAILURE() << "no error for " << path;
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const std::string& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

const char* ONE_TENSOR = R"({"a.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";

TEST(CheckpointBad, FolderWithoutModelFiles) {
  TempDir dir;
  expect_checkpoint_error<InvalidInput>(dir.path(), {dir.path().string(), "model.safetensors.index.json",
                                                     "model.safetensors"});
  expect_checkpoint_error<InvalidInput>(dir / "nope", {"nope", "does not exist"});
  testing::write_bytes(dir / "config.json", "{}");
  expect_checkpoint_error<InvalidInput>(dir / "config.json", {"config.json", ".safetensors"});
}

TEST(CheckpointBad, IndexNamesMissingShard) {
  TempDir dir;
  craft(dir, ONE_TENSOR, 8, -1, "model-00001-of-00002.safetensors");
  testing::write_bytes(dir / "model.safetensors.index.json",
                       R"({"metadata":{"total_size":16},"weight_map":{"a.weight":"model-00001-of-00002.safetensors",)"
                       R"("b.weight":"model-00002-of-00002.safetensors"}})");
  expect_checkpoint_error<InvalidInput>(dir.path(), {"model-00002-of-00002.safetensors", "'b.weight'", "missing"});
}

TEST(CheckpointBad, IndexNamesTensorAbsentFromShard) {
  TempDir dir;
  craft(dir, ONE_TENSOR, 8, -1, "model-00001-of-00001.safetensors");
  testing::write_bytes(dir / "model.safetensors.index.json",
                       R"({"weight_map":{"a.weight":"model-00001-of-00001.safetensors",)"
                       R"("ghost.weight":"model-00001-of-00001.safetensors"}})");
  expect_checkpoint_error<InvalidInput>(dir.path(), {"'ghost.weight'", "model-00001-of-00001.safetensors"});
}

TEST(CheckpointBad, IndexMalformed) {
  TempDir dir;
  testing::write_bytes(dir / "model.safetensors.index.json", R"({"weight_map": ["x"]})");
  expect_checkpoint_error<InvalidInput>(dir.path(), {"model.safetensors.index.json", "weight_map"});
  testing::write_bytes(dir / "model.safetensors.index.json", R"({"weight_map": {"x": "../../etc/passwd"}})");
  expect_checkpoint_error<InvalidInput>(dir.path(), {"model.safetensors.index.json", "'x'", "inside the folder"});
  testing::write_bytes(dir / "model.safetensors.index.json", "{\"weight_map\": {\n\"x\": }");
  expect_checkpoint_error<InvalidInput>(dir.path(), {"model.safetensors.index.json:2:"});
  // Found by fuzz/safetensors.cc: a number past double's range (nlohmann's out_of_range).
  testing::write_bytes(dir / "model.safetensors.index.json", R"({"metadata": {"total_size": 8880888e888880002}})");
  expect_checkpoint_error<InvalidInput>(dir.path(), {"model.safetensors.index.json", "number overflow"});
}

TEST(CheckpointBad, ShardErrorsNameTheShard) {
  TempDir dir;
  craft(dir, R"({"a.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,9]}})", 9, -1, "model.safetensors");
  expect_checkpoint_error<InvalidInput>(dir.path(), {"model.safetensors", "'a.weight'"});
}

TEST(CheckpointBad, GetMissingTensorNamesTensorAndCheckpoint) {
  TempDir dir;
  craft(dir, ONE_TENSOR, 8, -1, "model.safetensors");
  Checkpoint ck = Checkpoint::open(dir.path());
  EXPECT_TRUE(ck.has("a.weight"));
  EXPECT_FALSE(ck.has("b.weight"));
  try {
    ck.get("b.weight");
    ADD_FAILURE() << "no error";
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("'b.weight'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(dir.path().string()), std::string::npos) << e.what();
  }
  EXPECT_THROW(ck.release("b.weight"), InvalidInput);
}

TEST(SafetensorsDtype, Names) {
  for (DType t : {DType::F32, DType::BF16, DType::F16, DType::I32, DType::I64, DType::U8}) {
    EXPECT_EQ(dtype_from_safetensors(dtype_name(t)), t);
  }
  EXPECT_THROW(dtype_from_safetensors("f32"), InvalidInput);
  EXPECT_THROW(dtype_from_safetensors("BOOL"), Unsupported);
}

}  // namespace
}  // namespace oe::io
