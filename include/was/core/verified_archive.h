// Reading back what write_archive_atomically wrote, verified. A torch archive
// is a zip file whose entries each carry a CRC-32, but LibTorch never checks
// them: a checkpoint with flipped bytes in a tensor loads without complaint.
// Every checkpoint and export is read through here instead, so damage is
// refused with the entry it hit.
#pragma once

#include <torch/torch.h>

#include <string>

namespace was {

/// The first problem found in the zip archive `bytes` (a bad structure, an
/// entry outside the file, a CRC-32 that does not match its data), or an
/// empty string if every entry is intact.
std::string find_archive_damage(const std::string& bytes);

/// Reads `path`, verifies it with find_archive_damage and loads it onto
/// `device`. Throws was::Error naming `what`, the path and the damage, with
/// `hint`, for a missing, unreadable, damaged or non-torch file.
torch::serialize::InputArchive read_verified_archive(const std::string& path, const std::string& what,
                                                     const std::string& hint, torch::Device device = torch::kCPU);

}  // namespace was
