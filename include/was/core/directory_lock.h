// One process at a time per run directory: two processes training (or
// resuming) the same run would interleave their checkpoints. The lock is an
// flock(2) on DIR/.lock, released by the kernel when the process ends, so a
// killed run never leaves a stale lock behind.
#pragma once

#include <optional>
#include <string>

namespace was {

class DirectoryLock {
 public:
  /// Locks `dir` (created if missing) without waiting; std::nullopt if another
  /// process holds it. Throws was::Error if the lock file cannot be made.
  static std::optional<DirectoryLock> try_acquire(const std::string& dir);
  /// As try_acquire, but a held lock is an error naming the holder's pid.
  static DirectoryLock acquire(const std::string& dir, const std::string& what = "run directory");

  DirectoryLock(DirectoryLock&& other) noexcept;
  DirectoryLock& operator=(DirectoryLock&& other) noexcept;
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;
  ~DirectoryLock();

  /// The pid written by the process that holds `dir`'s lock, or -1 if unknown.
  static long holder_of(const std::string& dir);

 private:
  explicit DirectoryLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace was
