// Safetensors round trips (our writer -> our reader), format conformance against an independent Python/numpy
// reader and writer, sharding, and release() dropping resident pages.
#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "io/io_test_util.h"
#include "io/json.h"

namespace oe::io {
namespace {

using testing::TempDir;

// Deterministic element k of tensor `seed`, exactly representable in every dtype used (small halves and integers).
double value_of(int seed, int64_t k) { return (k % 97) * 0.5 - 20.0 + seed; }

void fill_values(const TensorSpec& s, void* buffer, int seed) {
  const int64_t n = shape_numel(s.shape);
  for (int64_t k = 0; k < n; ++k) {
    const double v = value_of(seed, k);
    switch (s.dtype) {
      case DType::F32: static_cast<float*>(buffer)[k] = static_cast<float>(v); break;
      case DType::BF16: static_cast<bf16_t*>(buffer)[k] = f32_to_bf16(static_cast<float>(v)); break;
      case DType::F16: static_cast<f16_t*>(buffer)[k] = f32_to_f16(static_cast<float>(v)); break;
      case DType::I32: static_cast<int32_t*>(buffer)[k] = static_cast<int32_t>(v * 2) * 1000003; break;
      case DType::I64: static_cast<int64_t*>(buffer)[k] = static_cast<int64_t>(v * 2) * (int64_t(1) << 40); break;
      case DType::U8: static_cast<uint8_t*>(buffer)[k] = static_cast<uint8_t>(k * 7); break;
    }
  }
}

int seed_of(const std::string& name) { return static_cast<int>(std::hash<std::string>{}(name) % 13); }

FillFn filler() {
  return [](const TensorSpec& s, void* buffer) { fill_values(s, buffer, seed_of(s.name)); };
}

void expect_tensor(const TensorInfo& t, const TensorSpec& s) {
  EXPECT_EQ(t.name, s.name);
  EXPECT_EQ(t.dtype, s.dtype) << s.name;
  EXPECT_EQ(t.shape, s.shape) << s.name;
  ASSERT_EQ(t.nbytes, s.nbytes()) << s.name;
  std::vector<uint8_t> want(std::max<size_t>(s.nbytes(), 1));
  fill_values(s, want.data(), seed_of(s.name));
  EXPECT_EQ(std::memcmp(t.data, want.data(), s.nbytes()), 0) << s.name;
}

const std::vector<TensorSpec> SPECS = {
    {"model.embed.weight", DType::BF16, {7, 5}}, {"model.norm.weight", DType::F32, {13}},
    {"audio.conv.weight", DType::F16, {2, 3, 4}}, {"position_ids", DType::I64, {1, 9}},
    {"grid", DType::I32, {3}},                     {"mask", DType::U8, {11}},
    {"scalar", DType::F32, {}},                    {"empty", DType::F32, {0, 4}},
};

TEST(Safetensors, RoundTripAllDtypes) {
  TempDir dir;
  const auto path = dir / "x.safetensors";
  write_safetensors(path, SPECS, filler(), {{"format", "pt"}, {"note", "round trip"}});
  EXPECT_FALSE(std::filesystem::exists(dir / "x.safetensors.tmp"));
  auto f = SafetensorsFile::open(path);
  ASSERT_EQ(f->tensors().size(), SPECS.size());
  for (const TensorSpec& s : SPECS) expect_tensor(f->tensors().at(s.name), s);
  EXPECT_EQ(f->metadata().at("format"), "pt");
  EXPECT_EQ(f->metadata().at("note"), "round trip");
  EXPECT_EQ(f->tensors().at("grid").file, "x.safetensors");
}

TEST(Safetensors, HeaderIsPaddedAndDataAligned) {
  TempDir dir;
  const auto path = dir / "x.safetensors";
  write_safetensors(path, {{"a", DType::F32, {3}}}, filler());
  const std::string bytes = testing::read_bytes(path);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + 12);
  const std::string header = bytes.substr(8, n);
  EXPECT_EQ(header.front(), '{');
  const size_t close = header.rfind('}');
  EXPECT_EQ(header.find_first_not_of(' ', close + 1), std::string::npos) << "padding must be spaces";
}

// The file our writer produces, read by an independent numpy implementation of the format.
TEST(Safetensors, PythonReadsWhatWeWrite) {
  TempDir dir;
  const auto path = dir / "x.safetensors";
  write_safetensors(path, SPECS, filler());
  std::ostringstream py;
  py << "import json, struct, numpy as np\n"
     << "b = open(r'''" << path.string() << "''', 'rb').read()\n"
     << "n = struct.unpack('<Q', b[:8])[0]\n"
     << "h = json.loads(b[8:8+n]); data = b[8+n:]\n"
     << "assert h['__metadata__'] == {'format': 'pt'}, h['__metadata__']\n"
     << "dt = {'F32': '<f4', 'F16': '<f2', 'I32': '<i4', 'I64': '<i8', 'U8': 'u1', 'BF16': '<u2'}\n"
     << "end = 0\n";
  for (const TensorSpec& s : SPECS) {
    const int seed = seed_of(s.name);
    py << "e = h['" << s.name << "']; assert e['dtype'] == '" << dtype_name(s.dtype) << "'\n"
       << "shape = tuple(e['shape']); b0, b1 = e['data_offsets']; end = max(end, b1)\n"
       << "a = np.frombuffer(data[b0:b1], dtype=dt[e['dtype']]).reshape(shape)\n"
       << "k = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)\n"
       << "v = (k % 97) * 0.5 - 20.0 + " << seed << "\n";
    switch (s.dtype) {
      case DType::BF16:
        py << "a = (a.astype(np.uint32) << 16).view(np.float32)\n"
           << "assert np.array_equal(a, v.astype(np.float32)), '" << s.name << "'\n";
        break;
      case DType::I32: py << "assert np.array_equal(a, (v * 2).astype(np.int64) * 1000003)\n"; break;
      case DType::I64: py << "assert np.array_equal(a, (v * 2).astype(np.int64) * (1 << 40))\n"; break;
      case DType::U8: py << "assert np.array_equal(a, (k * 7) % 256)\n"; break;
      default: py << "assert np.array_equal(a, v), '" << s.name << "'\n";
    }
  }
  py << "assert end == len(data), (end, len(data))\n";
  EXPECT_EQ(testing::run_python(dir.path(), py.str()), 0);
}

// A file written by an independent numpy writer (unpadded header, tensors in a shuffled order) read by us.
TEST(Safetensors, WeReadWhatPythonWrites) {
  TempDir dir;
  const auto path = dir / "py.safetensors";
  std::ostringstream py;
  py << "import json, struct, numpy as np\n"
     << "w = np.arange(12, dtype=np.float32).reshape(3, 4) * 0.25 - 1\n"
     << "b = (np.array([1.5, -2.0, 3.25], dtype=np.float32).view(np.uint32) >> 16).astype('<u2')\n"
     << "i = np.array([-7, 1 << 50], dtype='<i8')\n"
     << "h = {'w': {'dtype': 'F32', 'shape': [3, 4], 'data_offsets': [6, 54]},\n"
     << "     'b': {'dtype': 'BF16', 'shape': [3], 'data_offsets': [0, 6]},\n"
     << "     'i': {'dtype': 'I64', 'shape': [2], 'data_offsets': [54, 70]},\n"
     << "     '__metadata__': {'source': 'numpy'}}\n"
     << "hb = json.dumps(h).encode()\n"
     << "open(r'''" << path.string() << "''', 'wb').write(struct.pack('<Q', len(hb)) + hb + b.tobytes() + "
     << "w.tobytes() + i.tobytes())\n";
  ASSERT_EQ(testing::run_python(dir.path(), py.str()), 0);
  Checkpoint ck = Checkpoint::open(path);
  ASSERT_EQ(ck.size(), 3u);
  const TensorInfo& w = ck.get("w");
  EXPECT_EQ(w.shape, (Shape{3, 4}));
  float wv[12];
  std::memcpy(wv, w.data, sizeof wv);
  for (int k = 0; k < 12; ++k) EXPECT_EQ(wv[k], k * 0.25f - 1) << k;
  const TensorInfo& b = ck.get("b");
  ASSERT_EQ(b.dtype, DType::BF16);
  bf16_t bv[3];
  std::memcpy(bv, b.data, sizeof bv);
  EXPECT_EQ(bf16_to_f32(bv[0]), 1.5f);
  EXPECT_EQ(bf16_to_f32(bv[1]), -2.0f);
  EXPECT_EQ(bf16_to_f32(bv[2]), 3.25f);
  int64_t iv[2];
  std::memcpy(iv, ck.get("i").data, sizeof iv);
  EXPECT_EQ(iv[0], -7);
  EXPECT_EQ(iv[1], int64_t(1) << 50);
  EXPECT_EQ(SafetensorsFile::open(path)->metadata().at("source"), "numpy");
}

TEST(Checkpoint, SingleFileWhenItFits) {
  TempDir dir;
  write_checkpoint(dir.path(), SPECS, filler(), /*max_shard_bytes=*/1 << 20);
  EXPECT_TRUE(std::filesystem::exists(dir / "model.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(dir / "model.safetensors.index.json"));
  Checkpoint ck = Checkpoint::open(dir.path());
  ASSERT_EQ(ck.size(), SPECS.size());
  for (const TensorSpec& s : SPECS) expect_tensor(ck.get(s.name), s);
  EXPECT_EQ(ck.path(), dir.path());
}

TEST(Checkpoint, ShardedRoundTrip) {
  TempDir dir;
  // 400, 400, 400, 1200 (larger than a shard), 40, 400 bytes with shards of at most 1000 bytes.
  const std::vector<TensorSpec> specs = {
      {"t0", DType::F32, {10, 10}}, {"t1", DType::BF16, {200}}, {"t2", DType::I64, {50}},
      {"big", DType::F32, {300}},   {"t4", DType::F16, {20}},   {"t5", DType::F32, {100}},
  };
  write_checkpoint(dir.path(), specs, filler(), /*max_shard_bytes=*/1000);
  EXPECT_FALSE(std::filesystem::exists(dir / "model.safetensors"));
  // Expected split, worked out by hand: [t0 t1] [t2] [big] [t4 t5].
  const std::map<std::string, std::string> want = {
      {"t0", "model-00001-of-00004.safetensors"},  {"t1", "model-00001-of-00004.safetensors"},
      {"t2", "model-00002-of-00004.safetensors"},  {"big", "model-00003-of-00004.safetensors"},
      {"t4", "model-00004-of-00004.safetensors"}, {"t5", "model-00004-of-00004.safetensors"}};
  const nlohmann::json index = read_json_file(dir / "model.safetensors.index.json");
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), 400u * 3 + 1200 + 40 + 400);
  EXPECT_EQ(index["weight_map"].get<decltype(want)>(), want);
  for (int k = 1; k <= 4; ++k) {
    EXPECT_TRUE(std::filesystem::exists(dir / fmt::format("model-0000{}-of-00004.safetensors", k)));
  }
  Checkpoint ck = Checkpoint::open(dir.path());
  ASSERT_EQ(ck.size(), specs.size());
  for (const TensorSpec& s : specs) {
    expect_tensor(ck.get(s.name), s);
    EXPECT_EQ(ck.get(s.name).file, want.at(s.name));
  }
  EXPECT_EQ(ck.names(), (std::vector<std::string>{"big", "t0", "t1", "t2", "t4", "t5"}));
  // Rewriting as one file removes the index, which would otherwise win.
  write_checkpoint(dir.path(), specs, filler());
  EXPECT_FALSE(std::filesystem::exists(dir / "model.safetensors.index.json"));
  EXPECT_EQ(Checkpoint::open(dir.path()).get("t1").file, "model.safetensors");
}

TEST(Safetensors, FailedFillLeavesNoFile) {
  TempDir dir;
  const auto path = dir / "x.safetensors";
  auto bad_fill = [](const TensorSpec& s, void*) {
    if (s.name == "b") throw IoError("generator failed");
  };
  EXPECT_THROW(write_safetensors(path, {{"a", DType::F32, {4}}, {"b", DType::F32, {4}}}, bad_fill), IoError);
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(dir / "x.safetensors.tmp"));
}

TEST(Safetensors, WriterRejectsDuplicateNames) {
  TempDir dir;
  EXPECT_THROW(write_safetensors(dir / "x.safetensors", {{"a", DType::F32, {1}}, {"a", DType::F32, {1}}}, filler()),
               InvalidInput);
  EXPECT_THROW(write_safetensors(dir / "x.safetensors", {{"a", DType::F32, {-1}}}, filler()), InvalidInput);
}

// Resident set size in kB of the mapping containing `p`, from /proc/self/smaps.
long rss_kb_of_mapping(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  const auto addr = reinterpret_cast<uintptr_t>(p);
  while (std::getline(smaps, line)) {
    unsigned long lo, hi;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2) {  // a mapping's first line; field lines fail here
      inside = addr >= lo && addr < hi;
    } else if (inside && line.rfind("Rss:", 0) == 0) {
      return std::stol(line.substr(4));
    }
  }
  return -1;
}

TEST(Safetensors, ReleaseDropsResidentPages) {
  TempDir dir;
  const auto path = dir / "big.safetensors";
  const TensorSpec spec{"w", DType::F32, {1 << 20}};  // 4 MiB
  write_safetensors(path, {spec}, filler());
  Checkpoint ck = Checkpoint::open(path);
  const TensorInfo& t = ck.get("w");
  expect_tensor(t, spec);  // touches every page
  const long before = rss_kb_of_mapping(t.data);
  EXPECT_GE(before, 4000);
  ck.release("w");
  const long after = rss_kb_of_mapping(t.data);
  EXPECT_LE(after, 16) << "before " << before;  // at most the two partial edge pages
  expect_tensor(t, spec);  // pages come back from the file
}

}  // namespace
}  // namespace oe::io
