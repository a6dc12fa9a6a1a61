// Single images: JPEG and PNG decoding and encoding (Debian's libjpeg-turbo and
// libpng), and bilinear resizing, all on uint8 [C, H, W] tensors.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace was::data {

/// Largest width or height the decoders accept: a guard against corrupt
/// headers and decompression bombs.
constexpr int64_t kMaxImageSide = 16384;

/// Decodes a JPEG or PNG file (recognised by its first bytes, not its name) to
/// uint8 RGB [3, H, W]: grey becomes three equal channels, alpha is dropped
/// (not composited), palettes are expanded, 16-bit PNG keeps the high byte,
/// as PIL's `Image.convert("RGB")` does. Throws was::Error naming the file if
/// it is missing, unreadable, truncated, or not a JPEG or PNG image.
torch::Tensor read_image(const std::string& path);

/// As read_image, from bytes in memory; `name` is used in error messages.
torch::Tensor decode_image(const std::vector<uint8_t>& bytes, const std::string& name);

/// Writes uint8 [C, H, W] (C = 1 grey, 3 RGB or 4 RGBA) as a PNG file.
/// Atomic: written to `path + ".tmp"`, then renamed.
void write_png(const std::string& path, const torch::Tensor& image);

/// Writes uint8 [C, H, W] (C = 1 or 3) as a baseline JPEG of `quality` 1..100,
/// 4:2:0 chroma for RGB (libjpeg's defaults). Atomic as write_png.
void write_jpeg(const std::string& path, const torch::Tensor& image, int quality = 90);

/// Bilinear resize of uint8 [C, H, W] to [C, height, width]: half-pixel
/// centres, antialiased when shrinking (as PIL's BILINEAR), rounded to the
/// nearest integer. The same size returns an identical copy.
torch::Tensor resize_image(const torch::Tensor& image, int64_t height, int64_t width);

namespace detail {

/// A decoded image: interleaved RGB bytes, row-major (H x W x 3).
struct RgbImage {
  int64_t height = 0, width = 0;
  std::vector<uint8_t> pixels;
};

/// Decodes JPEG or PNG bytes into `out` (its buffer is reused); throws
/// was::Error naming `name`. What read_image does, without a tensor per image.
void decode_rgb(const uint8_t* data, size_t size, const std::string& name, RgbImage& out);

/// Reads a whole file into `out` (reused); throws was::Error naming the file.
void read_file_bytes(const std::string& path, std::vector<uint8_t>& out);

}  // namespace detail
}  // namespace was::data
