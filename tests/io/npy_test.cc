// .npy round trips, and cross-checks with numpy itself in both directions (the oracle is numpy's np.save/np.load).
#include "io/npy.h"

#include <gtest/gtest.h>

#include <cstring>
#include <sstream>

#include <fmt/format.h>

#include "core/error.h"
#include "io/io_test_util.h"

namespace oe::io {
namespace {

using testing::TempDir;

// Element k: (k % 23) * 0.5 - 3, exact in every float dtype; integers use k * 3 - 7 (times 2^33 for I64).
Tensor make(Shape shape, DType dt) {
  Tensor t(shape, dt);
  for (int64_t k = 0; k < t.numel(); ++k) {
    const float v = (k % 23) * 0.5f - 3;
    switch (dt) {
      case DType::F32: t.ptr<float>()[k] = v; break;
      case DType::BF16: t.ptr<bf16_t>()[k] = f32_to_bf16(v); break;
      case DType::F16: t.ptr<f16_t>()[k] = f32_to_f16(v); break;
      case DType::I32: t.ptr<int32_t>()[k] = static_cast<int32_t>(k * 3 - 7); break;
      case DType::I64: t.ptr<int64_t>()[k] = (k * 3 - 7) * (int64_t(1) << 33); break;
      case DType::U8: t.ptr<uint8_t>()[k] = static_cast<uint8_t>(k * 3 - 7); break;
    }
  }
  return t;
}

// The numpy expression for make()'s values (an independent statement of the same formula).
std::string numpy_expected(const Shape& shape, DType dt) {
  const std::string k = fmt::format("np.arange({}, dtype=np.int64)", shape_numel(shape));
  std::string tuple = "(";
  for (int64_t d : shape) tuple += fmt::format("{},", d);
  tuple += ")";
  std::string v;
  switch (dt) {
    case DType::F32: case DType::BF16: v = fmt::format("(({} % 23) * 0.5 - 3).astype('<f4')", k); break;
    case DType::F16: v = fmt::format("(({} % 23) * 0.5 - 3).astype('<f2')", k); break;
    case DType::I32: v = fmt::format("({} * 3 - 7).astype('<i4')", k); break;
    case DType::I64: v = fmt::format("(({} * 3 - 7) * 2**33).astype('<i8')", k); break;
    case DType::U8: v = fmt::format("(({} * 3 - 7) % 256).astype('u1')", k); break;
  }
  return fmt::format("{}.reshape({})", v, tuple);
}

struct Case {
  Shape shape;
  DType dtype;
};
const std::vector<Case> CASES = {{{2, 3}, DType::F32},    {{5}, DType::F32},    {{}, DType::F32},
                                 {{0, 4}, DType::F32},    {{3, 1, 2}, DType::BF16}, {{7}, DType::F16},
                                 {{4, 2}, DType::I32},    {{6}, DType::I64},    {{300}, DType::U8}};

void expect_equal(const Tensor& got, const Tensor& want) {
  ASSERT_EQ(got.shape(), want.shape());
  ASSERT_EQ(got.dtype(), want.dtype());
  EXPECT_EQ(std::memcmp(got.data(), want.data(), want.nbytes()), 0);
}

TEST(Npy, RoundTrip) {
  TempDir dir;
  for (size_t i = 0; i < CASES.size(); ++i) {
    const Tensor t = make(CASES[i].shape, CASES[i].dtype);
    const auto path = dir / fmt::format("t{}.npy", i);
    write_npy(path, t);
    const Tensor back = read_npy(path);
    // BF16 is stored as float32 (numpy has no bfloat16).
    expect_equal(back, t.dtype() == DType::BF16 ? t.to_f32() : t);
  }
}

TEST(Npy, HeaderLayout) {
  TempDir dir;
  write_npy(dir / "a.npy", make({5}, DType::F32));
  const std::string b = testing::read_bytes(dir / "a.npy");
  ASSERT_GE(b.size(), 10u);
  EXPECT_EQ(b.substr(0, 6), "\x93NUMPY");
  EXPECT_EQ(b[6], 1);
  EXPECT_EQ(b[7], 0);
  const size_t header_len = static_cast<uint8_t>(b[8]) | (static_cast<uint8_t>(b[9]) << 8);
  EXPECT_EQ((10 + header_len) % 64, 0u);
  EXPECT_EQ(b[10 + header_len - 1], '\n');
  EXPECT_NE(b.find("'shape': (5,)"), std::string::npos) << "1-D shape needs a trailing comma";
  EXPECT_EQ(b.size(), 10 + header_len + 20);
}

TEST(Npy, NumpyReadsWhatWeWrite) {
  TempDir dir;
  std::ostringstream py;
  py << "import numpy as np\n";
  for (size_t i = 0; i < CASES.size(); ++i) {
    const auto path = dir / fmt::format("t{}.npy", i);
    write_npy(path, make(CASES[i].shape, CASES[i].dtype));
    py << "a = np.load(r'''" << path.string() << "''')\n"
       << "e = " << numpy_expected(CASES[i].shape, CASES[i].dtype) << "\n"
       << "assert a.dtype == e.dtype and a.shape == e.shape and np.array_equal(a, e), (" << i << ", a, e)\n";
  }
  EXPECT_EQ(testing::run_python(dir.path(), py.str()), 0);
}

TEST(Npy, WeReadWhatNumpyWrites) {
  TempDir dir;
  std::ostringstream py;
  py << "import numpy as np\n";
  for (size_t i = 0; i < CASES.size(); ++i) {
    if (CASES[i].dtype == DType::BF16) continue;
    py << "np.save(r'''" << (dir / fmt::format("n{}.npy", i)).string() << "''', "
       << numpy_expected(CASES[i].shape, CASES[i].dtype) << ")\n";
  }
  // Version 2.0 header and float64 (read as float32).
  py << "with open(r'''" << (dir / "v2.npy").string() << "''', 'wb') as f:\n"
     << "    np.lib.format.write_array(f, " << numpy_expected({3, 4}, DType::I64) << ", version=(2, 0))\n"
     << "np.save(r'''" << (dir / "f8.npy").string() << "''', np.arange(5, dtype=np.float64) * 0.25 - 1)\n"
     << "np.save(r'''" << (dir / "fortran.npy").string() << "''', np.asfortranarray(np.ones((2, 3), '<f4')))\n"
     << "np.save(r'''" << (dir / "big_endian.npy").string() << "''', np.ones(3, '>f4'))\n"
     << "np.save(r'''" << (dir / "complex.npy").string() << "''', np.ones(3, np.complex64))\n";
  ASSERT_EQ(testing::run_python(dir.path(), py.str()), 0);

  for (size_t i = 0; i < CASES.size(); ++i) {
    if (CASES[i].dtype == DType::BF16) continue;
    SCOPED_TRACE(i);
    expect_equal(read_npy(dir / fmt::format("n{}.npy", i)), make(CASES[i].shape, CASES[i].dtype));
  }
  expect_equal(read_npy(dir / "v2.npy"), make({3, 4}, DType::I64));
  const Tensor f8 = read_npy(dir / "f8.npy");
  ASSERT_EQ(f8.dtype(), DType::F32);
  ASSERT_EQ(f8.shape(), Shape{5});
  for (int k = 0; k < 5; ++k) EXPECT_EQ(f8.ptr<float>()[k], k * 0.25f - 1);
  EXPECT_THROW(read_npy(dir / "fortran.npy"), InvalidInput);
  EXPECT_THROW(read_npy(dir / "big_endian.npy"), Unsupported);
  EXPECT_THROW(read_npy(dir / "complex.npy"), Unsupported);
}

// Expects read_npy(path) to throw E with `needle` and the file name in the message.
template <typename E>
void expect_read_error(const std::filesystem::path& path, const std::string& needle) {
  try {
    read_npy(path);
    ADD_FAILURE() << "no error for " << path;
  } catch (const E& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_NE(msg.find(path.filename().string()), std::string::npos) << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

std::string npy_v1(const std::string& dict, const std::string& data) {
  std::string h = dict;
  while ((10 + h.size() + 1) % 64 != 0) h += ' ';
  h += '\n';
  std::string out = std::string("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(h.size() & 0xff);
  out += static_cast<char>(h.size() >> 8);
  return out + h + data;
}

TEST(Npy, BadFiles) {
  TempDir dir;
  testing::write_bytes(dir / "magic.npy", "PK\x03\x04 this is a zip");
  expect_read_error<InvalidInput>(dir / "magic.npy", "not a .npy file");
  testing::write_bytes(dir / "short.npy", "\x93NU");
  expect_read_error<InvalidInput>(dir / "short.npy", "truncated");
  testing::write_bytes(dir / "version.npy", std::string("\x93NUMPY\x09\x00\x10\x00", 10) + std::string(16, ' '));
  expect_read_error<InvalidInput>(dir / "version.npy", "version 9.0");
  testing::write_bytes(dir / "hlen.npy", std::string("\x93NUMPY\x01\x00\xff\x7f", 10) + "{}");
  expect_read_error<InvalidInput>(dir / "hlen.npy", "header length 32767");
  testing::write_bytes(dir / "data.npy",
                       npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", std::string(20, 'x')));
  expect_read_error<InvalidInput>(dir / "data.npy", "needs 24 data bytes, the file has 20");
  testing::write_bytes(dir / "dict.npy", npy_v1("{'descr': '<f4', 'shape': (2, 3), }", std::string(24, 'x')));
  expect_read_error<InvalidInput>(dir / "dict.npy", "'fortran_order'");
  testing::write_bytes(dir / "neg.npy",
                       npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", std::string(8, 'x')));
  expect_read_error<InvalidInput>(dir / "neg.npy", "non-negative");
  expect_read_error<IoError>(dir / "missing.npy", "cannot open");
}

}  // namespace
}  // namespace oe::io
