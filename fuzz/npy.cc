// Fuzz target: a .npy file through io::read_npy (magic, version, header length, the Python dict literal, the data
// size). An array that reads is written back with io::write_npy and read again: the second reading must give the
// same shape, dtype and bytes.
#include <cstdint>
#include <cstring>

#include "fuzz_util.h"
#include "io/npy.h"

namespace {

void round_trip(const std::filesystem::path& path) {
  const oe::Tensor t = oe::io::read_npy(path);
  const std::filesystem::path again = oe::fuzz::scratch_dir() / "again.npy";
  oe::io::write_npy(again, t);
  const oe::Tensor u = oe::io::read_npy(again);
  if (u.shape() != t.shape() || u.dtype() != t.dtype() || u.nbytes() != t.nbytes() ||
      (t.nbytes() > 0 && std::memcmp(u.data(), t.data(), t.nbytes()) != 0)) {
    oe::fuzz::finding("npy round trip", "the array read back differs");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = oe::fuzz::write_input("input.npy", data, size);
  oe::fuzz::expect_clean([&] { round_trip(path); }, path.string());
  return 0;
}
