// Files that matter are written to a temporary name, synced and renamed, so a
// crash never leaves a half-written one and the previous version stays intact.
#pragma once

#include <torch/torch.h>

#include <cstddef>
#include <string>

namespace was {

/// Writes `size` bytes to `path` through `path + ".tmp"`, fsync and a rename
/// (then syncs the directory); throws was::Error naming `what` and the path if
/// a step fails, and removes the temporary file.
void write_file_atomically(const std::string& path, const void* data, size_t size, const std::string& what = "file");

inline void write_file_atomically(const std::string& path, const std::string& text, const std::string& what = "file") {
  write_file_atomically(path, text.data(), text.size(), what);
}

/// A torch archive (checkpoint, export) written the same way, its parent
/// directories created.
void write_archive_atomically(const std::string& path, torch::serialize::OutputArchive& archive,
                              const std::string& what);

}  // namespace was
