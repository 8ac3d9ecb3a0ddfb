// NumPy .npy reader and writer. Format (numpy.lib.format): magic "\x93NUMPY", major and minor version bytes, the
// header length (uint16 LE in v1.0, uint32 LE in v2.0/3.0), then a Python dict literal
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded with spaces and ended by '\n' so that the data
// starts at a multiple of 64 bytes; then the array bytes in C order.
#include "io/npy.h"

#include "io/read.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

#include "core/error.h"
#include "io/atomic_file.h"

namespace oe::io {

namespace fs = std::filesystem;

namespace {

constexpr char MAGIC[] = "\x93NUMPY";
constexpr size_t MAGIC_LEN = 6;
constexpr size_t ALIGN = 64;

const char* npy_descr(DType t) {
  switch (t) {
    case DType::F32: return "<f4";
    case DType::BF16: return "<f4";  // numpy has no bfloat16: widened to float32
    case DType::F16: return "<f2";
    case DType::I32: return "<i4";
    case DType::I64: return "<i8";
    case DType::U8: return "|u1";
  }
  return "?";
}

std::string shape_tuple(const Shape& s) {
  if (s.size() == 1) return fmt::format("({},)", s[0]);
  return fmt::format("({})", fmt::join(s, ", "));
}

// The parsed header dict.
struct Header {
  std::string descr;
  bool fortran_order = false;
  Shape shape;
};

// A small parser for the Python literal numpy writes: a dict of string keys to a string, True/False, or a tuple of
// integers.
class DictParser {
 public:
  DictParser(const std::string& text, const std::string& file) : s_(text), file_(file) {}

  Header parse() {
    Header h;
    bool has_descr = false, has_order = false, has_shape = false;
    expect('{');
    while (peek() != '}') {
      std::string key = parse_string();
      expect(':');
      if (key == "descr") {
        h.descr = parse_string();
        has_descr = true;
      } else if (key == "fortran_order") {
        h.fortran_order = parse_bool();
        has_order = true;
      } else if (key == "shape") {
        h.shape = parse_tuple();
        has_shape = true;
      } else {
        fail(fmt::format("unexpected key '{}'", key));
      }
      if (peek() == ',') ++i_;
    }
    ++i_;
    if (!has_descr || !has_order || !has_shape) fail("the header must have 'descr', 'fortran_order' and 'shape'");
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw InvalidInput(fmt::format("{}: bad .npy header at character {}: {} (header: {})", file_, i_, why, s_));
  }
  char peek() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
    if (i_ >= s_.size()) fail("unexpected end");
    return s_[i_];
  }
  void expect(char c) {
    if (peek() != c) fail(fmt::format("expected '{}'", c));
    ++i_;
  }
  std::string parse_string() {
    char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string");
    size_t end = s_.find(q, i_ + 1);
    if (end == std::string::npos) fail("unterminated string");
    std::string out = s_.substr(i_ + 1, end - i_ - 1);
    i_ = end + 1;
    return out;
  }
  bool parse_bool() {
    peek();
    if (s_.compare(i_, 4, "True") == 0) return i_ += 4, true;
    if (s_.compare(i_, 5, "False") == 0) return i_ += 5, false;
    fail("expected True or False");
  }
  Shape parse_tuple() {
    Shape shape;
    expect('(');
    while (peek() != ')') {
      size_t start = i_;
      int64_t v = 0;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, s_[i_] - '0', &v)) fail("dimension too large");
        ++i_;
      }
      if (i_ == start) fail("expected a non-negative integer dimension");
      if (i_ < s_.size() && s_[i_] == 'L') ++i_;  // Python 2 long
      shape.push_back(v);
      if (peek() == ',') ++i_;
    }
    ++i_;
    return shape;
  }

  const std::string& s_;
  const std::string& file_;
  size_t i_ = 0;
};

// The element type a descr is read as, and whether it is float64 (converted to F32 on reading).
DType dtype_from_descr(const std::string& d, const std::string& file, bool* is_f64) {
  *is_f64 = false;
  if (d == "<f4") return DType::F32;
  if (d == "<f2") return DType::F16;
  if (d == "<i4") return DType::I32;
  if (d == "<i8") return DType::I64;
  if (d == "|u1" || d == "<u1" || d == "u1") return DType::U8;
  if (d == "<f8") {
    *is_f64 = true;
    return DType::F32;
  }
  if (!d.empty() && d[0] == '>') throw Unsupported(fmt::format("{}: big-endian dtype '{}' is not supported", file, d));
  throw Unsupported(fmt::format("{}: dtype '{}' is not supported (<f4, <f2, <f8, <i4, <i8, |u1 are)", file, d));
}

void read_exact(std::ifstream& in, void* dst, size_t n, const std::string& file, const char* what) {
  in.read(static_cast<char*>(dst), static_cast<std::streamsize>(n));
  if (static_cast<size_t>(in.gcount()) != n) {
    throw InvalidInput(fmt::format("{}: file ends inside the {} (truncated .npy)", file, what));
  }
}

}  // namespace

void write_npy(const fs::path& path, const Tensor& t) {
  OE_CHECK(!t.empty() || t.numel() == 0, "write_npy of a tensor without storage to {}", path.string());
  std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", npy_descr(t.dtype()),
                                 shape_tuple(t.shape()));
  // v1.0 has a 2-byte header length; a header past 64 KiB (a rank in the thousands) needs v2.0's 4 bytes.
  const bool v2 = MAGIC_LEN + 2 + 2 + dict.size() + 1 > 65535;
  const size_t prefix = MAGIC_LEN + 2 + (v2 ? 4 : 2);
  dict.append((ALIGN - (prefix + dict.size() + 1) % ALIGN) % ALIGN, ' ');
  dict.push_back('\n');

  AtomicFile out(path);
  out.write(MAGIC, MAGIC_LEN);
  const uint8_t version[2] = {static_cast<uint8_t>(v2 ? 2 : 1), 0};
  out.write(version, 2);
  const uint32_t len = static_cast<uint32_t>(dict.size());
  out.write(&len, v2 ? 4 : 2);  // little-endian host
  out.write(dict);
  if (t.dtype() == DType::BF16) {
    Tensor f = t.to_f32();
    out.write(f.data(), f.nbytes());
  } else {
    out.write(t.data(), t.nbytes());
  }
  out.commit();
}

Tensor read_npy(const fs::path& path) {
  const std::string file = path.string();
  check_regular_file(path);
  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  if (!in || fs::is_directory(path, ec)) throw IoError(fmt::format("{}: cannot open: {}", file, std::strerror(errno)));
  const uint64_t size = fs::file_size(path, ec);
  if (ec) throw IoError(fmt::format("{}: cannot stat: {}", file, ec.message()));

  char magic[MAGIC_LEN];
  read_exact(in, magic, MAGIC_LEN, file, "magic string");
  if (std::memcmp(magic, MAGIC, MAGIC_LEN) != 0) {
    throw InvalidInput(fmt::format("{}: not a .npy file (it does not start with \\x93NUMPY)", file));
  }
  uint8_t version[2];
  read_exact(in, version, 2, file, "version");
  if (version[0] < 1 || version[0] > 3) {
    throw InvalidInput(fmt::format("{}: .npy format version {}.{} is not supported (1.0, 2.0, 3.0 are)", file,
                                   version[0], version[1]));
  }
  uint32_t header_len = 0;
  read_exact(in, &header_len, version[0] == 1 ? 2 : 4, file, "header length");
  const uint64_t data_offset = MAGIC_LEN + 2 + (version[0] == 1 ? 2 : 4) + uint64_t(header_len);
  if (data_offset > size) {
    throw InvalidInput(fmt::format("{}: header length {} is larger than the file ({} bytes)", file, header_len, size));
  }
  std::string text(header_len, '\0');
  read_exact(in, text.data(), header_len, file, "header");
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\0')) text.pop_back();
  const Header h = DictParser(text, file).parse();
  if (h.fortran_order) {
    throw InvalidInput(fmt::format("{}: fortran_order True is not supported; save a C-order array "
                                   "(numpy.ascontiguousarray)",
                                   file));
  }
  bool is_f64 = false;
  const DType dtype = dtype_from_descr(h.descr, file, &is_f64);
  const uint64_t item = is_f64 ? 8 : dtype_size(dtype);
  uint64_t nbytes = item;
  for (int64_t d : h.shape) {
    if (__builtin_mul_overflow(nbytes, static_cast<uint64_t>(d), &nbytes)) {
      throw InvalidInput(fmt::format("{}: shape {} is too large", file, shape_str(h.shape)));
    }
  }
  if (size - data_offset != nbytes) {
    throw InvalidInput(fmt::format("{}: {} {} needs {} data bytes, the file has {}", file, h.descr,
                                   shape_str(h.shape), nbytes, size - data_offset));
  }
  Tensor t(h.shape, dtype);
  if (!is_f64) {
    read_exact(in, t.data(), nbytes, file, "data");
    return t;
  }
  std::vector<double> tmp(static_cast<size_t>(t.numel()));
  read_exact(in, tmp.data(), nbytes, file, "data");
  float* dst = t.ptr<float>();
  for (size_t i = 0; i < tmp.size(); ++i) dst[i] = static_cast<float>(tmp[i]);
  return t;
}

}  // namespace oe::io
