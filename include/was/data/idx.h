// Reader and writer of the IDX format of MNIST and Fashion-MNIST.
//
// Layout (big-endian): a 4-byte magic, one 4-byte size per dimension, then the
// uint8 payload in row-major order. Files may be gzip-compressed or raw; the
// reader accepts both.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace was::data {

constexpr uint32_t kIdxImagesMagic = 0x00000803;  ///< 2051: uint8, 3 dimensions
constexpr uint32_t kIdxLabelsMagic = 0x00000801;  ///< 2049: uint8, 1 dimension

/// Reads an IDX image file (gzip or raw) as uint8 [N, 1, rows, cols]. Throws
/// was::Error naming the file if it is missing, has the wrong magic, is
/// truncated, has absurd dimensions or trailing bytes.
torch::Tensor read_idx_images(const std::string& path);

/// Reads an IDX label file (gzip or raw) as int64 [N]; errors as read_idx_images.
torch::Tensor read_idx_labels(const std::string& path);

/// Writes uint8 images [N, 1, H, W] or [N, H, W] as an IDX image file, gzipped
/// if `gzip`. Atomic: written to `path + ".tmp"`, then renamed.
void write_idx_images(const std::string& path, const torch::Tensor& images, bool gzip);

/// Writes integer labels [N] with values in [0, 255] as an IDX label file.
void write_idx_labels(const std::string& path, const torch::Tensor& labels, bool gzip);

}  // namespace was::data
