#include "was/core/verified_archive.h"

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "was/core/error.h"

namespace was {
namespace fs = std::filesystem;
namespace {

// Zip record signatures and sizes (PKWARE APPNOTE 4.3).
constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kEndOfCentral = 0x06054b50;
constexpr uint32_t kZip64EndOfCentral = 0x06064b50;
constexpr uint32_t kZip64Locator = 0x07064b50;
constexpr size_t kLocalHeaderSize = 30;
constexpr size_t kCentralHeaderSize = 46;
constexpr size_t kEndOfCentralSize = 22;
constexpr size_t kZip64LocatorSize = 20;
constexpr size_t kZip64EndOfCentralSize = 56;
constexpr uint16_t kStored = 0;
constexpr uint16_t kDeflated = 8;

// Bounds-checked little-endian reads: every offset comes from the file itself.
class Reader {
 public:
  explicit Reader(const std::string& bytes) : bytes_(bytes) {}
  bool has(uint64_t offset, uint64_t length) const {
    return offset <= bytes_.size() && length <= bytes_.size() - offset;
  }
  uint64_t le(uint64_t offset, int width) const {
    uint64_t value = 0;
    for (int i = width - 1; i >= 0; --i)
      value = (value << 8) | static_cast<unsigned char>(bytes_[static_cast<size_t>(offset) + i]);
    return value;
  }
  uint32_t u32(uint64_t offset) const { return static_cast<uint32_t>(le(offset, 4)); }
  uint16_t u16(uint64_t offset) const { return static_cast<uint16_t>(le(offset, 2)); }
  uint64_t u64(uint64_t offset) const { return le(offset, 8); }
  const char* at(uint64_t offset) const { return bytes_.data() + offset; }
  uint64_t size() const { return bytes_.size(); }

 private:
  const std::string& bytes_;
};

struct CentralDirectory {
  uint64_t entries = 0;
  uint64_t offset = 0;
  uint64_t size = 0;
};

// The end-of-central-directory record is the last one with its signature,
// at most a 64 KiB comment before the end of the file.
std::string find_central_directory(const Reader& r, CentralDirectory& cd) {
  if (r.size() < kEndOfCentralSize) return "too short to be a torch archive (" + std::to_string(r.size()) + " bytes)";
  const uint64_t last = r.size() - kEndOfCentralSize;
  const uint64_t first = last > 0xffff ? last - 0xffff : 0;
  uint64_t eocd = last + 1;
  for (uint64_t pos = last + 1; pos-- > first;) {
    if (r.u32(pos) == kEndOfCentral) {
      eocd = pos;
      break;
    }
  }
  if (eocd > last) return "no zip directory at its end (truncated, or not a torch archive)";
  cd.entries = r.u16(eocd + 10);
  cd.size = r.u32(eocd + 12);
  cd.offset = r.u32(eocd + 16);
  if (cd.entries == 0xffff || cd.size == 0xffffffff || cd.offset == 0xffffffff) {
    if (eocd < kZip64LocatorSize || r.u32(eocd - kZip64LocatorSize) != kZip64Locator)
      return "its zip directory needs a zip64 record that is missing";
    const uint64_t record = r.u64(eocd - kZip64LocatorSize + 8);
    if (!r.has(record, kZip64EndOfCentralSize) || r.u32(record) != kZip64EndOfCentral)
      return "its zip64 directory record is damaged";
    cd.entries = r.u64(record + 32);
    cd.size = r.u64(record + 40);
    cd.offset = r.u64(record + 48);
  }
  if (!r.has(cd.offset, cd.size)) return "its zip directory points outside the file (truncated?)";
  if (cd.entries == 0) return "it holds no entries";
  return "";
}

// A central entry's sizes and offset may live in its zip64 extra field.
void read_zip64_extra(const Reader& r, uint64_t extra, uint64_t extra_length, uint64_t& size, uint64_t& compressed,
                      uint64_t& local) {
  uint64_t pos = extra;
  while (pos + 4 <= extra + extra_length) {
    const uint16_t id = r.u16(pos);
    const uint16_t length = r.u16(pos + 2);
    uint64_t field = pos + 4;
    const uint64_t end = field + length;
    if (end > extra + extra_length) return;
    if (id == 0x0001) {
      for (uint64_t* value : {&size, &compressed, &local}) {
        if (*value != 0xffffffff) continue;
        if (field + 8 > end) return;
        *value = r.u64(field);
        field += 8;
      }
      return;
    }
    pos = end;
  }
}

// The CRC-32 of a raw-deflate stream's output (torch compresses its code/
// entries), decompressed in chunks; false if the stream is not `size` bytes.
bool inflated_crc(const char* data, uint64_t compressed, uint64_t size, uint32_t& crc) {
  z_stream stream{};
  if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) return false;
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
  stream.avail_in = static_cast<uInt>(std::min<uint64_t>(compressed, 1u << 30));
  if (stream.avail_in != compressed) {
    inflateEnd(&stream);
    return false;  // larger than any code entry torch writes
  }
  std::vector<Bytef> chunk(1 << 16);
  uLong running = crc32(0L, Z_NULL, 0);
  uint64_t produced = 0;
  int status = Z_OK;
  while (status == Z_OK) {
    stream.next_out = chunk.data();
    stream.avail_out = static_cast<uInt>(chunk.size());
    status = inflate(&stream, Z_NO_FLUSH);
    const uInt got = static_cast<uInt>(chunk.size()) - stream.avail_out;
    running = crc32(running, chunk.data(), got);
    produced += got;
    if (status == Z_OK && got == 0 && stream.avail_in == 0) break;  // stream ended early
  }
  inflateEnd(&stream);
  crc = static_cast<uint32_t>(running);
  return status == Z_STREAM_END && produced == size;
}

std::string check_entry(const Reader& r, uint64_t& pos, uint64_t directory_end) {
  if (pos + kCentralHeaderSize > directory_end || r.u32(pos) != kCentralHeader)
    return "its zip directory is damaged at byte " + std::to_string(pos);
  const uint16_t method = r.u16(pos + 10);
  const uint32_t crc = r.u32(pos + 16);
  uint64_t compressed = r.u32(pos + 20);
  uint64_t size = r.u32(pos + 24);
  const uint16_t name_length = r.u16(pos + 28);
  const uint16_t extra_length = r.u16(pos + 30);
  const uint16_t comment_length = r.u16(pos + 32);
  uint64_t local = r.u32(pos + 42);
  const uint64_t name = pos + kCentralHeaderSize;
  const uint64_t next = name + name_length + extra_length + comment_length;
  if (next > directory_end) return "its zip directory is damaged at byte " + std::to_string(pos);
  const std::string entry(r.at(name), name_length);
  read_zip64_extra(r, name + name_length, extra_length, size, compressed, local);
  pos = next;

  if (method != kStored && method != kDeflated)
    return "entry '" + entry + "' uses zip method " + std::to_string(method) + ", which torch archives never use";
  if (method == kStored && compressed != size) return "entry '" + entry + "' has inconsistent sizes";
  if (!r.has(local, kLocalHeaderSize) || r.u32(local) != kLocalHeader)
    return "the header of entry '" + entry + "' is damaged";
  const uint64_t data = local + kLocalHeaderSize + r.u16(local + 26) + r.u16(local + 28);
  if (r.u16(local + 26) != name_length || std::memcmp(r.at(local + kLocalHeaderSize), r.at(name), name_length) != 0)
    return "the header of entry '" + entry + "' does not match the zip directory";
  if (!r.has(data, compressed)) return "entry '" + entry + "' runs past the end of the file (truncated?)";
  uint32_t actual = 0;
  if (method == kStored) {
    actual = static_cast<uint32_t>(
        crc32_z(crc32_z(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(r.at(data)), static_cast<z_size_t>(size)));
  } else if (!inflated_crc(r.at(data), compressed, size, actual)) {
    return "entry '" + entry + "' does not decompress (the file is damaged)";
  }
  if (actual != crc) return "entry '" + entry + "' fails its CRC-32 check (the file is damaged)";
  return "";
}

}  // namespace

std::string find_archive_damage(const std::string& bytes) {
  const Reader r(bytes);
  CentralDirectory cd;
  if (std::string why = find_central_directory(r, cd); !why.empty()) return why;
  uint64_t pos = cd.offset;
  const uint64_t end = cd.offset + cd.size;
  for (uint64_t i = 0; i < cd.entries; ++i) {
    if (std::string why = check_entry(r, pos, end); !why.empty()) return why;
  }
  return "";
}

torch::serialize::InputArchive read_verified_archive(const std::string& path, const std::string& what,
                                                     const std::string& hint, torch::Device device) {
  const std::string named = what + " '" + path + "'";
  std::error_code ec;
  if (!fs::exists(path, ec)) throw NotFoundError(named + " does not exist", hint);
  if (fs::is_directory(path, ec)) throw Error(named + " is a directory, not a file", hint);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open " + named + ": " + std::strerror(errno), hint);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error("cannot read " + named + ": " + std::strerror(errno), hint);
  if (std::string why = find_archive_damage(bytes); !why.empty()) throw Error(named + " is damaged: " + why, hint);
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(bytes.data(), bytes.size(), device);
  } catch (const std::exception&) {
    throw Error(named + " is a zip file but not a torch archive", hint);
  }
  return archive;
}

}  // namespace was
