// Hostile and broken inputs against the binary: each gets a clear error naming it, quickly (nothing blocks on a
// device or a pipe, nothing reads forever), the run goes on where it can, and nothing is stored as if it were good.
#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/files.h"
#include "common/json_lines.h"
#include "test_util.h"

namespace oe {
namespace {

namespace fs = std::filesystem;
using testing::json_lines;
using testing::TempDir;

std::string model(const char* name = "tiny-f32") { return testing::test_model(name).string(); }

// Runs the binary with a time limit: a hang fails the test instead of stalling the suite.
testing::Outcome run(const TempDir& tmp, const std::string& args) {
  return testing::run_split(fmt::format("timeout 120 '{}' {}", OE_CLI, args), (tmp / "stderr.txt").string());
}

TEST(Hostile, DevicesAndPipesAreRefusedWithoutReading) {
  TempDir tmp;
  ASSERT_EQ(::mkfifo((tmp / "pipe.png").c_str(), 0600), 0);
  for (const std::string& image : {std::string("/dev/zero"), (tmp / "pipe.png").string()}) {
    const auto o = run(tmp, fmt::format("embed --model '{}' --image '{}'", model(), image));
    EXPECT_EQ(o.rc, 1) << image << ": " << o.err;
    EXPECT_NE(o.err.find(image + ": is a"), std::string::npos) << o.err;
    EXPECT_NE(o.err.find("expected a regular file"), std::string::npos) << o.err;
  }
  // A manifest entry naming /dev/zero fails on its own (before: index spun forever holding the index lock).
  testing::write_file(tmp / "m.jsonl", "{\"id\": \"z\", \"image\": \"/dev/zero\"}\n{\"id\": \"t\", \"text\": \"fine\"}\n");
  const auto o = run(tmp, fmt::format("index --model '{}' --index '{}' '{}' --format json", model(),
                                      (tmp / "idx").string(), (tmp / "m.jsonl").string()));
  EXPECT_EQ(o.rc, 1) << o.err;
  const auto summary = json_lines(o.out);
  ASSERT_EQ(summary.size(), 1u) << o.out << o.err;
  EXPECT_EQ(summary[0]["added"], 1);
  EXPECT_EQ(summary[0]["failed"], 1);
  EXPECT_NE(o.err.find("/dev/zero: is a character device"), std::string::npos) << o.err;
  // The evaluation's files too.
  testing::write_file(tmp / "run.trec", "q1 Q0 d1 1 1.0 x\n");
  const auto e = run(tmp, fmt::format("eval --run '{}' --qrels /dev/zero", (tmp / "run.trec").string()));
  EXPECT_EQ(e.rc, 1) << e.err;
  EXPECT_NE(e.err.find("/dev/zero: is a character device"), std::string::npos) << e.err;
}

TEST(Hostile, OversizedFilesAndLinesAreRefusedNamingTheLimit) {
  TempDir tmp;
  testing::write_file(tmp / "big.png", std::string(4096, 'x'));
  auto o = run(tmp, fmt::format("embed --model '{}' --image '{}' --max-image-bytes 1024", model(),
                                (tmp / "big.png").string()));
  EXPECT_EQ(o.rc, 1) << o.err;
  EXPECT_NE(o.err.find("the image file is larger than"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("--max-image-bytes"), std::string::npos) << o.err;
  // A JSONL line longer than the cap: a clear error, not a read of the whole line.
  testing::write_file(tmp / "items.jsonl", "{\"text\": \"" + std::string(3 << 20, 'a') + "\"}\n");
  o = run(tmp, fmt::format("embed --model '{}' --input '{}' --max-text-bytes 1048576", model(),
                           (tmp / "items.jsonl").string()));
  EXPECT_EQ(o.rc, 1) << o.err;
  EXPECT_NE(o.err.find("items.jsonl line 1: the JSONL line is longer than 1 MiB"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("--max-text-bytes"), std::string::npos) << o.err;
  // A run file whose "line" never ends.
  testing::write_file(tmp / "run.trec", std::string(2 << 20, 'q'));
  testing::write_file(tmp / "qrels.txt", "q1 0 d1 1\n");
  o = run(tmp, fmt::format("eval --run '{}' --qrels '{}'", (tmp / "run.trec").string(), (tmp / "qrels.txt").string()));
  EXPECT_EQ(o.rc, 1) << o.err;
  EXPECT_NE(o.err.find("line 1: the line is longer than 1 MiB"), std::string::npos) << o.err;
}

TEST(Hostile, ThreadCountsBeyondReasonAreUsageErrors) {
  TempDir tmp;
  for (const char* n : {"65535", "40000"}) {
    const auto o = run(tmp, fmt::format("embed --model '{}' --query x --threads {}", model(), n));
    EXPECT_NE(o.rc, 0);
    EXPECT_NE(o.rc, 124);  // not a hang
    EXPECT_NE(o.err.find("--threads"), std::string::npos) << o.err;
  }
}

// A BOM at the start of a qrels file is not part of the first query id.
TEST(Hostile, QrelsWithAByteOrderMarkScore) {
  TempDir tmp;
  testing::write_file(tmp / "run.trec", "q1 Q0 d1 1 2.0 x\nq1 Q0 d2 2 1.0 x\n");
  testing::write_file(tmp / "qrels.txt", "\xEF\xBB\xBFq1 0 d1 1\n");
  const auto o = run(tmp, fmt::format("eval --run '{}' --qrels '{}' --k 1 --format json", (tmp / "run.trec").string(),
                                      (tmp / "qrels.txt").string()));
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_EQ(o.err.find("without judgments"), std::string::npos) << o.err;
}

// A float WAV of `n` samples at 16 kHz, one of them NaN.
void write_float_wav_with_nan(const fs::path& path, uint32_t n) {
  std::vector<float> samples(n, 0.1f);
  samples[n / 2] = std::numeric_limits<float>::quiet_NaN();
  std::ofstream f(path, std::ios::binary);
  auto u32 = [&](uint32_t v) { f.write(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [&](uint16_t v) { f.write(reinterpret_cast<const char*>(&v), 2); };
  f.write("RIFF", 4);
  u32(36 + 4 * n);
  f.write("WAVEfmt ", 8);
  u32(16);
  u16(3);  // IEEE float
  u16(1);  // mono
  u32(16000);
  u32(64000);
  u16(4);
  u16(32);
  f.write("data", 4);
  u32(4 * n);
  f.write(reinterpret_cast<const char*>(samples.data()), static_cast<std::streamsize>(4 * n));
}

TEST(Hostile, NonFiniteAudioIsAnErrorNamingTheFile) {
  TempDir tmp;
  write_float_wav_with_nan(tmp / "nan.wav", 16000);
  const auto o = run(tmp, fmt::format("embed --model '{}' --audio '{}'", model(), (tmp / "nan.wav").string()));
  EXPECT_EQ(o.rc, 1) << o.err;
  EXPECT_NE(o.err.find("nan.wav: the audio holds NaN or infinite samples"), std::string::npos) << o.err;
}

// Weights with NaN give no vector: the item fails with a clear error and the index stores no zero vector.
TEST(Hostile, NonFiniteWeightsFailTheItemAndStoreNothing) {
  TempDir tmp;
  const fs::path bad = tmp / "nan-model";
  fs::copy(model(), bad, fs::copy_options::recursive);
  // Every value of the final norm's weight becomes NaN (found through the safetensors header).
  const std::string py = fmt::format(
      "import json, struct, glob\n"
      "for f in glob.glob('{0}/*.safetensors'):\n"
      "    b = bytearray(open(f, 'rb').read()); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])\n"
      "    t = h.get('model.norm.weight') or h.get('thinker.model.norm.weight')\n"
      "    if t:\n"
      "        s, e = t['data_offsets']\n"
      "        b[8 + n + s:8 + n + e] = struct.pack('<f', float('nan')) * ((e - s) // 4)\n"
      "        open(f, 'wb').write(b)\n",
      bad.string());
  testing::write_file(tmp / "nan.py", py);
  ASSERT_EQ(std::system(fmt::format("'{}' '{}'", OE_PYTHON, (tmp / "nan.py").string()).c_str()), 0);
  auto o = run(tmp, fmt::format("embed --model '{}' --dtype fp32 --query 'a cat'", bad.string()));
  EXPECT_EQ(o.rc, 1) << o.err;
  auto lines = json_lines(o.out);
  ASSERT_EQ(lines.size(), 1u) << o.out;
  EXPECT_NE(lines[0].value("error", "").find("NaN or infinite values"), std::string::npos) << lines[0];
  EXPECT_FALSE(lines[0].contains("embedding"));
  testing::write_file(tmp / "docs" / "a.txt", "a note");
  o = run(tmp, fmt::format("index --model '{}' --dtype fp32 --index '{}' '{}' --format json", bad.string(),
                           (tmp / "idx").string(), (tmp / "docs").string()));
  EXPECT_EQ(o.rc, 1) << o.err;
  const auto summary = json_lines(o.out);
  ASSERT_EQ(summary.size(), 1u) << o.out;
  EXPECT_EQ(summary[0]["failed"], 1);
  EXPECT_EQ(summary[0]["vectors"], 0);
  const auto check = run(tmp, fmt::format("index --index '{}' --check", (tmp / "idx").string()));
  EXPECT_EQ(check.rc, 0) << check.out << check.err;
}

}  // namespace
}  // namespace oe
