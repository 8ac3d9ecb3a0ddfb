// Reading files a user points at, safely. Only regular files are read: a FIFO, a device, a socket or a folder is
// refused before anything is read, so nothing blocks or reads forever (/dev/zero, a named pipe). Every read has a cap:
// the file's size is checked first and the cap is enforced while reading, so a file that grows is cut off with the
// same error. Errors name the file, and for a cap, how to raise it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <istream>
#include <string>

namespace oe::io {

inline constexpr uint64_t MiB = uint64_t{1} << 20;

// The most a read may take, and what to say when it is more.
struct ReadCap {
  uint64_t max_bytes = 0;
  const char* what = "file";  // "image file", "JSONL line", ... for messages
  const char* raise = "";     // how to raise the cap ("--max-image-bytes"); "" when it cannot be raised
};

// Default caps. The model folder's JSON files (config, tokenizer, prompts) are trusted, but not unbounded.
inline constexpr ReadCap JSON_FILE_CAP{64 * MiB, "JSON file"};

// IoError naming the file when it does not exist, cannot be inspected, or is not a regular file (then saying what
// it is: a folder, a FIFO, a device, a socket).
void check_regular_file(const std::filesystem::path& path);

// The whole file. IoError as check_regular_file and for read errors; InvalidInput when it is larger than the cap.
std::string read_file(const std::filesystem::path& path, const ReadCap& cap);
// The same, followed by `padding` zero bytes in the same allocation (for decoders that may read a little past the
// end of their input, as FFmpeg's do, so that the file need not be copied for them). The cap is on the file alone;
// the result's size is the file's plus `padding`.
std::string read_file_padded(const std::filesystem::path& path, const ReadCap& cap, size_t padding);

// `length` bytes from `offset` (fewer when the file ends first). IoError as check_regular_file and for read errors.
std::string read_file_range(const std::filesystem::path& path, uint64_t offset, uint64_t length);

// Reads one line (up to '\n', which is dropped; a trailing '\r' is kept) into `line`; false at the end of the stream
// with nothing read. InvalidInput naming `name` and the line number when the line is longer than the cap.
bool read_line(std::istream& in, std::string& line, const ReadCap& cap, const std::string& name, int64_t line_number);

// A regular file read line by line, each line capped; a UTF-8 byte-order mark at the start is dropped.
class LineReader {
 public:
  LineReader(const std::filesystem::path& path, const ReadCap& line_cap);
  // The next line and its 1-based number; false at the end. IoError for a read error.
  bool next(std::string& line);
  int64_t line_number() const { return line_number_; }

 private:
  std::filesystem::path path_;
  ReadCap cap_;
  std::ifstream in_;
  int64_t line_number_ = 0;
};

// Drops a UTF-8 byte-order mark (EF BB BF) at the start of `s`.
void strip_utf8_bom(std::string& s);

}  // namespace oe::io
