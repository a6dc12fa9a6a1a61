// Files that matter are written to a temporary name and renamed, so a crash
// never leaves a half-written one and the previous version stays intact.
#pragma once

#include <cstddef>
#include <string>

namespace was {

/// Writes `size` bytes to `path` through `path + ".tmp"` and a rename; throws
/// was::Error naming `what` and the path if either step fails.
void write_file_atomically(const std::string& path, const void* data, size_t size, const std::string& what = "file");

inline void write_file_atomically(const std::string& path, const std::string& text,
                                  const std::string& what = "file") {
  write_file_atomically(path, text.data(), text.size(), what);
}

}  // namespace was
