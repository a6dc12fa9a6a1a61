#include "was/data/idx.h"

#include <zlib.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <vector>

#include "was/core/atomic_file.h"
#include "was/core/error.h"

namespace was::data {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kMagicBytes = 4;
constexpr int64_t kDimBytes = 4;
constexpr int64_t kImagesHeaderBytes = kMagicBytes + 3 * kDimBytes;  // 16
constexpr int64_t kLabelsHeaderBytes = kMagicBytes + kDimBytes;      // 8
// Bounds far above any real image set, low enough that a corrupt header cannot
// make us allocate absurd amounts of memory.
constexpr int64_t kMaxSide = 1 << 14;
constexpr int64_t kMaxCount = int64_t{1} << 31;
constexpr int64_t kMaxPayloadBytes = int64_t{1} << 34;  // 16 GiB
// gzread takes an unsigned int length: read in bounded chunks.
constexpr int64_t kReadChunkBytes = int64_t{1} << 24;

const char* const kMissingHint =
    "install the data set (`apt-get install dataset-fashion-mnist`) or point --data-dir at a "
    "directory holding the IDX files";
const char* const kCorruptHint = "the file is damaged; re-install or re-download it";

struct GzCloser {
  void operator()(gzFile f) const {
    if (f != nullptr) gzclose(f);
  }
};
using GzHandle = std::unique_ptr<gzFile_s, GzCloser>;

uint32_t read_be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void write_be32(unsigned char* p, uint32_t v) {
  p[0] = static_cast<unsigned char>(v >> 24);
  p[1] = static_cast<unsigned char>(v >> 16);
  p[2] = static_cast<unsigned char>(v >> 8);
  p[3] = static_cast<unsigned char>(v);
}

GzHandle open_for_reading(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    throw NotFoundError("IDX file " + in_quotes(path) + " does not exist", kMissingHint);
  }
  if (fs::is_directory(path, ec)) {
    throw Error("IDX file " + in_quotes(path) + " is a directory", "give the path of the file itself");
  }
  errno = 0;
  GzHandle f(gzopen(path.c_str(), "rb"));
  if (!f) {
    throw Error(
        "cannot open IDX file " + in_quotes(path) + ": " + (errno != 0 ? std::strerror(errno) : "out of memory"),
        "check the file's permissions");
  }
  return f;
}

/// Reads up to `len` decompressed bytes; returns how many it got (fewer at the end).
int64_t read_some(gzFile f, void* buf, int64_t len, const std::string& path) {
  auto* out = static_cast<unsigned char*>(buf);
  int64_t got = 0;
  while (got < len) {
    const auto want = static_cast<unsigned>(std::min(len - got, kReadChunkBytes));
    const int n = gzread(f, out + got, want);
    if (n < 0) {
      int code = 0;
      const char* msg = gzerror(f, &code);
      throw Error("cannot read IDX file " + in_quotes(path) + ": " + (msg ? msg : "read error"), kCorruptHint);
    }
    if (n == 0) break;
    got += n;
  }
  return got;
}

/// Reads exactly `len` bytes at byte `offset` of the (decompressed) file, or
/// throws a truncation error stating the expected (and, if known, actual) size.
/// The file ended after `got` of the `expected` bytes (both from its start).
[[noreturn]] void throw_truncated(gzFile f, int64_t expected_bytes, int64_t got, const std::string& path,
                                  const char* part) {
  int code = 0;
  gzerror(f, &code);
  const std::string expected = std::to_string(expected_bytes) + " bytes (" + part + ")";
  // zlib reports a gzip stream cut short as Z_BUF_ERROR, and then cannot say
  // how many bytes the last read produced: report no count rather than a wrong one.
  if (code == Z_BUF_ERROR) {
    throw Error("IDX file " + in_quotes(path) + " is truncated: its gzip stream ends before the expected " + expected,
                kCorruptHint);
  }
  throw Error("IDX file " + in_quotes(path) + " is truncated: expected " + expected + ", got " + std::to_string(got),
              kCorruptHint);
}

void read_exact(gzFile f, void* buf, int64_t len, int64_t offset, const std::string& path, const char* part) {
  const int64_t got = read_some(f, buf, len, path);
  if (got < len) throw_truncated(f, offset + len, offset + got, path, part);
}

/// `len` bytes at `offset` as uint8 [len], read in growing chunks: memory
/// follows the data that actually arrive, so a small file whose header claims
/// gigabytes fails as truncated without allocating them.
torch::Tensor read_payload(gzFile f, int64_t len, int64_t offset, const std::string& path, const char* part) {
  constexpr int64_t kFirstChunk = int64_t{16} << 20;
  std::vector<uint8_t> bytes;
  int64_t got = 0;
  while (got < len) {
    const int64_t want = std::min(len - got, std::max(kFirstChunk, got));  // doubles the buffer each round
    bytes.resize(static_cast<size_t>(got + want));
    const int64_t n = read_some(f, bytes.data() + got, want, path);
    got += n;
    if (n < want) break;
  }
  if (got < len) throw_truncated(f, offset + len, offset + got, path, part);
  torch::Tensor out = torch::empty({len}, torch::kByte);
  if (len > 0) std::memcpy(out.data_ptr<uint8_t>(), bytes.data(), static_cast<size_t>(len));
  return out;
}

void expect_end(gzFile f, const std::string& path, int64_t expected) {
  std::array<unsigned char, 4096> scratch{};
  int64_t extra = 0;
  for (;;) {
    const int64_t n = read_some(f, scratch.data(), static_cast<int64_t>(scratch.size()), path);
    if (n == 0) break;
    extra += n;
  }
  if (extra > 0) {
    throw Error("IDX file " + in_quotes(path) + " has " + std::to_string(extra) +
                    " trailing bytes after the expected " + std::to_string(expected),
                kCorruptHint);
  }
}

void check_magic(uint32_t found, uint32_t expected, const std::string& path, const char* kind) {
  if (found != expected) {
    throw Error("IDX file " + in_quotes(path) + " has the wrong magic number: found " + std::to_string(found) +
                    ", expected " + std::to_string(expected) + " (" + kind + ")",
                "is this the right file? image files are *-images-idx3-ubyte[.gz], label files "
                "*-labels-idx1-ubyte[.gz]");
  }
}

void check_dim(int64_t value, int64_t max, const std::string& path, const char* name) {
  if (value < 1 || value > max) {
    throw Error("IDX file " + in_quotes(path) + " declares an implausible " + name + " of " + std::to_string(value) +
                    " (allowed 1.." + std::to_string(max) + ")",
                kCorruptHint);
  }
}

/// Writes `header` then `payload` to `path` (gzip-compressed when asked) with
/// the library's one atomic write: a temporary file, synced, then renamed.
void write_file(const std::string& path, const std::vector<unsigned char>& header, const torch::Tensor& payload_u8,
                bool gzip) {
  std::vector<unsigned char> bytes(header);
  const auto* payload = payload_u8.data_ptr<uint8_t>();
  bytes.insert(bytes.end(), payload, payload + payload_u8.numel());
  if (!gzip) {
    write_file_atomically(path, bytes.data(), bytes.size(), "IDX file");
    return;
  }
  if (bytes.size() > std::numeric_limits<uInt>::max())
    throw Error("cannot write IDX file " + in_quotes(path) + ": over 4 GiB", "write it uncompressed");
  z_stream z{};
  // windowBits 15 + 16: a gzip wrapper, as gzopen's "wb6" wrote before.
  if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw Error("cannot write IDX file " + in_quotes(path) + ": zlib could not start");
  std::vector<unsigned char> packed(deflateBound(&z, static_cast<uLong>(bytes.size())));
  z.next_in = bytes.data();
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = packed.data();
  z.avail_out = static_cast<uInt>(packed.size());
  const int status = deflate(&z, Z_FINISH);
  packed.resize(z.total_out);
  deflateEnd(&z);
  if (status != Z_STREAM_END) throw Error("cannot write IDX file " + in_quotes(path) + ": compression failed");
  write_file_atomically(path, packed.data(), packed.size(), "IDX file");
}

}  // namespace

torch::Tensor read_idx_images(const std::string& path) {
  GzHandle f = open_for_reading(path);
  std::array<unsigned char, kImagesHeaderBytes> header{};
  // The magic first, so a label file given as images reports the mix-up.
  read_exact(f.get(), header.data(), kMagicBytes, 0, path, "the magic number");
  check_magic(read_be32(header.data()), kIdxImagesMagic, path, "uint8 images, 3 dimensions");
  read_exact(f.get(), header.data() + kMagicBytes, kImagesHeaderBytes - kMagicBytes, kMagicBytes, path, "the header");
  const int64_t n = read_be32(header.data() + kMagicBytes);
  const int64_t rows = read_be32(header.data() + kMagicBytes + kDimBytes);
  const int64_t cols = read_be32(header.data() + kMagicBytes + 2 * kDimBytes);
  check_dim(n, kMaxCount, path, "image count");
  check_dim(rows, kMaxSide, path, "row count");
  check_dim(cols, kMaxSide, path, "column count");
  const int64_t payload = n * rows * cols;
  if (payload > kMaxPayloadBytes) {
    throw Error("IDX file " + in_quotes(path) + " declares " + std::to_string(n) + " images of " +
                    std::to_string(rows) + "x" + std::to_string(cols) + ", more than the reader's limit of " +
                    std::to_string(kMaxPayloadBytes) + " bytes",
                kCorruptHint);
  }
  torch::Tensor images =
      read_payload(f.get(), payload, kImagesHeaderBytes, path, "header and pixels").view({n, 1, rows, cols});
  expect_end(f.get(), path, kImagesHeaderBytes + payload);
  return images;
}

torch::Tensor read_idx_labels(const std::string& path) {
  GzHandle f = open_for_reading(path);
  std::array<unsigned char, kLabelsHeaderBytes> header{};
  read_exact(f.get(), header.data(), kMagicBytes, 0, path, "the magic number");
  check_magic(read_be32(header.data()), kIdxLabelsMagic, path, "uint8 labels, 1 dimension");
  read_exact(f.get(), header.data() + kMagicBytes, kLabelsHeaderBytes - kMagicBytes, kMagicBytes, path, "the header");
  const int64_t n = read_be32(header.data() + kMagicBytes);
  check_dim(n, kMaxCount, path, "label count");
  torch::Tensor raw = read_payload(f.get(), n, kLabelsHeaderBytes, path, "header and labels");
  expect_end(f.get(), path, kLabelsHeaderBytes + n);
  return raw.to(torch::kLong);
}

void write_idx_images(const std::string& path, const torch::Tensor& images, bool gzip) {
  if (!images.defined() || images.scalar_type() != torch::kByte ||
      !(images.dim() == 3 || (images.dim() == 4 && images.size(1) == 1))) {
    throw Error("write_idx_images(" + in_quotes(path) + "): images must be uint8 [N, 1, H, W] or [N, H, W]",
                "IDX holds one grey channel of uint8 pixels");
  }
  const torch::Tensor x = images.dim() == 4 ? images.squeeze(1) : images;
  std::vector<unsigned char> header(kImagesHeaderBytes);
  write_be32(header.data(), kIdxImagesMagic);
  for (int64_t d = 0; d < 3; ++d) {
    if (x.size(d) > std::numeric_limits<uint32_t>::max()) {
      throw Error("write_idx_images(" + in_quotes(path) + "): dimension too large for IDX");
    }
    write_be32(header.data() + kMagicBytes + d * kDimBytes, static_cast<uint32_t>(x.size(d)));
  }
  write_file(path, header, x.contiguous().cpu(), gzip);
}

void write_idx_labels(const std::string& path, const torch::Tensor& labels, bool gzip) {
  if (!labels.defined() || labels.dim() != 1 || !c10::isIntegralType(labels.scalar_type(), false)) {
    throw Error("write_idx_labels(" + in_quotes(path) + "): labels must be an integer tensor [N]");
  }
  if (labels.numel() > 0 && (labels.min().item<int64_t>() < 0 || labels.max().item<int64_t>() > 255)) {
    throw Error("write_idx_labels(" + in_quotes(path) + "): labels must lie in [0, 255]",
                "IDX stores one byte per label");
  }
  if (labels.size(0) > std::numeric_limits<uint32_t>::max()) {
    throw Error("write_idx_labels(" + in_quotes(path) + "): too many labels for IDX");
  }
  std::vector<unsigned char> header(kLabelsHeaderBytes);
  write_be32(header.data(), kIdxLabelsMagic);
  write_be32(header.data() + kMagicBytes, static_cast<uint32_t>(labels.size(0)));
  write_file(path, header, labels.cpu().to(torch::kByte).contiguous(), gzip);
}

}  // namespace was::data
