#include "was/core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "was/core/error.h"

namespace was {
namespace fs = std::filesystem;

namespace {

// The directory entry of a rename is durable only once its directory is synced.
void sync_directory(const fs::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;  // best effort: some file systems refuse directories
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

void write_file_atomically(const std::string& path, const void* data, size_t size, const std::string& what) {
  const fs::path target(path);
  const std::string tmp = path + ".tmp";
  const auto fail = [&](const std::string& why) {
    std::error_code ec;
    fs::remove(tmp, ec);  // never leave a partial file behind (a full disk stays usable)
    throw Error("cannot write " + what + " '" + path + "': " + why,
                "check that the directory exists and is writable, and free disk space");
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(std::strerror(errno));
  const char* p = static_cast<const char*>(data);
  size_t left = size;
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = n < 0 ? std::strerror(errno) : "no space written";
      ::close(fd);
      fail(why);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  // The data reach the disk before the name does: a crash leaves the old file or the new one.
  if (::fsync(fd) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    fail(why);
  }
  if (::close(fd) != 0) fail(std::strerror(errno));
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error("cannot rename '" + tmp + "' to '" + path + "': " + ec.message());
  }
  sync_directory(target.parent_path());
}

void write_archive_atomically(const std::string& path, torch::serialize::OutputArchive& archive,
                              const std::string& what) {
  std::string bytes;
  archive.save_to([&bytes](const void* data, size_t size) {
    bytes.append(static_cast<const char*>(data), size);
    return size;
  });
  const fs::path target(path);
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  write_file_atomically(path, bytes.data(), bytes.size(), what);
}

}  // namespace was
