#include "was/core/directory_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "was/core/error.h"

namespace was {
namespace fs = std::filesystem;

namespace {
std::string lock_path(const std::string& dir) { return (fs::path(dir) / ".lock").string(); }
}  // namespace

std::optional<DirectoryLock> DirectoryLock::try_acquire(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error("cannot create directory '" + dir + "': " + ec.message(), "check the path and its permissions");
  const std::string path = lock_path(dir);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    throw Error("cannot open lock file '" + path + "': " + std::strerror(errno),
                "check that the directory is writable");
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) return std::nullopt;
    throw Error("cannot lock '" + path + "': " + std::strerror(err));
  }
  // The holder's pid, for the message another process prints; informative only.
  const std::string pid = std::to_string(static_cast<long>(::getpid())) + "\n";
  if (::ftruncate(fd, 0) == 0) {
    [[maybe_unused]] const ssize_t n = ::pwrite(fd, pid.data(), pid.size(), 0);
  }
  return DirectoryLock(fd);
}

DirectoryLock DirectoryLock::acquire(const std::string& dir, const std::string& what) {
  auto lock = try_acquire(dir);
  if (!lock) {
    const long pid = holder_of(dir);
    throw Error(what + " '" + dir + "' is in use by another process" +
                    (pid > 0 ? " (pid " + std::to_string(pid) + ")" : std::string()),
                "wait for it to finish or stop it, or choose another directory");
  }
  return std::move(*lock);
}

long DirectoryLock::holder_of(const std::string& dir) {
  std::ifstream in(lock_path(dir));
  long pid = -1;
  if (!(in >> pid)) return -1;
  return pid;
}

DirectoryLock::DirectoryLock(DirectoryLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

DirectoryLock& DirectoryLock::operator=(DirectoryLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

DirectoryLock::~DirectoryLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the flock
}

}  // namespace was
