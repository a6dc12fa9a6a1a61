#include "was/data/image.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

// libjpeg's header needs size_t and FILE declared first.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
// clang-format off
#include <jpeglib.h>
#include <jerror.h>
// clang-format on
#include <png.h>

#include <algorithm>
#include <cerrno>
#include <csetjmp>
#include <filesystem>
#include <fstream>
#include <memory>

#include "was/core/atomic_file.h"
#include "was/core/error.h"

namespace was::data {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kRgbChannels = 3;
constexpr uint8_t kJpegMagic[] = {0xFF, 0xD8, 0xFF};
constexpr uint8_t kPngMagic[] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
constexpr size_t kPngMessageBytes = 256;
const char* const kDamagedHint = "the file is damaged or truncated: re-create it, or remove it from the folder";

bool starts_with(const uint8_t* data, size_t size, const uint8_t* magic, size_t magic_size) {
  return size >= magic_size && std::memcmp(data, magic, magic_size) == 0;
}

// --- JPEG --------------------------------------------------------------------------
//
// libjpeg reports fatal errors through error_exit, which must not return: the
// usual longjmp back to the caller. Only C objects and the caller's buffers
// live between setjmp and a possible longjmp, so the jump skips no destructor.

struct JpegErrorManager {
  jpeg_error_mgr pub;  // first, so libjpeg's jpeg_error_mgr* points at the whole struct
  std::jmp_buf jump;
  bool truncated;
};

[[noreturn]] void jpeg_on_error(j_common_ptr cinfo) {
  std::longjmp(reinterpret_cast<JpegErrorManager*>(cinfo->err)->jump, 1);
}

// Warnings are not printed; "premature end of file" marks a truncated file.
void jpeg_on_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;
  if (cinfo->err->msg_code == JWRN_JPEG_EOF) reinterpret_cast<JpegErrorManager*>(cinfo->err)->truncated = true;
  ++cinfo->err->num_warnings;
}

std::string jpeg_message(j_common_ptr cinfo) {
  char buf[JMSG_LENGTH_MAX] = {};
  (*cinfo->err->format_message)(cinfo, buf);
  return buf[0] ? buf : "unknown libjpeg error";
}

/// One row of CMYK as RGB (R = (1 - C)(1 - K), ...). Adobe's JPEGs, nearly
/// all CMYK ones, store the inks inverted, so there R = C K.
void cmyk_to_rgb(const uint8_t* cmyk, uint8_t* rgb, int64_t width, bool adobe_inverted) {
  for (int64_t x = 0; x < width; ++x, cmyk += 4, rgb += 3) {
    const int k = adobe_inverted ? cmyk[3] : 255 - cmyk[3];
    for (int c = 0; c < 3; ++c) {
      const int ink = adobe_inverted ? cmyk[c] : 255 - cmyk[c];
      rgb[c] = static_cast<uint8_t>((ink * k + 127) / 255);
    }
  }
}

/// Decodes into `out`; returns "" on success, else what went wrong.
std::string decode_jpeg(const uint8_t* data, size_t size, detail::RgbImage& out) {
  jpeg_decompress_struct cinfo{};
  JpegErrorManager err{};
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = jpeg_on_error;
  err.pub.emit_message = jpeg_on_message;
  if (setjmp(err.jump)) {
    std::string message = jpeg_message(reinterpret_cast<j_common_ptr>(&cinfo));
    jpeg_destroy_decompress(&cinfo);
    return message;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  if (cinfo.image_width > kMaxImageSide || cinfo.image_height > kMaxImageSide) {
    const auto w = cinfo.image_width, h = cinfo.image_height;
    jpeg_destroy_decompress(&cinfo);
    return "its size " + std::to_string(w) + "x" + std::to_string(h) + " exceeds the limit of " +
           std::to_string(kMaxImageSide) + " pixels a side";
  }
  // libjpeg turns grey and YCbCr into RGB itself, but not CMYK (print
  // workflows' JPEGs): those are read as CMYK and converted below.
  const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  out.height = cinfo.output_height;
  out.width = cinfo.output_width;
  const size_t stride = static_cast<size_t>(out.width) * kRgbChannels;
  out.pixels.resize(stride * static_cast<size_t>(out.height));
  std::vector<uint8_t> cmyk_row(cmyk ? static_cast<size_t>(out.width) * 4 : 0);
  while (cinfo.output_scanline < cinfo.output_height) {
    uint8_t* rgb = out.pixels.data() + stride * cinfo.output_scanline;
    JSAMPROW row = cmyk ? cmyk_row.data() : rgb;
    jpeg_read_scanlines(&cinfo, &row, 1);
    if (cmyk) cmyk_to_rgb(cmyk_row.data(), rgb, out.width, cinfo.saw_Adobe_marker);
  }
  jpeg_finish_decompress(&cinfo);
  const bool truncated = err.truncated;
  jpeg_destroy_decompress(&cinfo);
  return truncated ? "the JPEG data end early (truncated file)" : "";
}

/// Encodes interleaved rows; on success `*buffer` (malloc'ed by libjpeg) holds `*size` bytes.
std::string encode_jpeg(const uint8_t* pixels, int64_t height, int64_t width, int channels, int quality,
                        unsigned char** buffer, unsigned long* size) {
  jpeg_compress_struct cinfo{};
  JpegErrorManager err{};
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = jpeg_on_error;
  err.pub.emit_message = jpeg_on_message;
  if (setjmp(err.jump)) {
    std::string message = jpeg_message(reinterpret_cast<j_common_ptr>(&cinfo));
    jpeg_destroy_compress(&cinfo);
    return message;
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, buffer, size);
  cinfo.image_width = static_cast<JDIMENSION>(width);
  cinfo.image_height = static_cast<JDIMENSION>(height);
  cinfo.input_components = channels;
  cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  const size_t stride = static_cast<size_t>(width) * static_cast<size_t>(channels);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(pixels) + stride * cinfo.next_scanline;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  return "";
}

// --- PNG ---------------------------------------------------------------------------
//
// The classic libpng API, for PIL's conversions: alpha stripped (not
// composited), 16 bits cut to the high byte, no gamma correction.

struct PngState {
  const uint8_t* data;
  size_t size;
  size_t offset;
  char message[kPngMessageBytes];
  png_structp png;
  png_infop info;
};

[[noreturn]] void png_on_error(png_structp png, png_const_charp msg) {
  auto* state = static_cast<PngState*>(png_get_error_ptr(png));
  std::snprintf(state->message, sizeof state->message, "%s", msg ? msg : "unknown libpng error");
  png_longjmp(png, 1);
}

void png_on_warning(png_structp, png_const_charp) {}

void png_read_bytes(png_structp png, png_bytep out, size_t length) {
  auto* state = static_cast<PngState*>(png_get_io_ptr(png));
  if (length > state->size - state->offset) png_error(png, "the PNG data end early (truncated file)");
  std::memcpy(out, state->data + state->offset, length);
  state->offset += length;
}

/// Decodes into `out` (`rows` is scratch owned by the caller, so that no C++
/// object is born between setjmp and longjmp); returns "" on success.
std::string decode_png(const uint8_t* data, size_t size, detail::RgbImage& out, std::vector<png_bytep>& rows) {
  PngState state{data, size, 0, {}, nullptr, nullptr};
  state.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &state, png_on_error, png_on_warning);
  if (!state.png) return "out of memory";
  state.info = png_create_info_struct(state.png);
  if (!state.info) {
    png_destroy_read_struct(&state.png, nullptr, nullptr);
    return "out of memory";
  }
  if (setjmp(png_jmpbuf(state.png))) {
    png_destroy_read_struct(&state.png, &state.info, nullptr);
    return state.message;
  }
  png_set_read_fn(state.png, &state, png_read_bytes);
  png_set_user_limits(state.png, kMaxImageSide, kMaxImageSide);
  png_read_info(state.png, state.info);
  const png_byte color = png_get_color_type(state.png, state.info);
  const png_byte depth = png_get_bit_depth(state.png, state.info);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(state.png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(state.png);
  if (depth == 16) png_set_strip_16(state.png);
  if (color & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(state.png);
  if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(state.png);
  png_set_interlace_handling(state.png);
  png_read_update_info(state.png, state.info);
  out.height = png_get_image_height(state.png, state.info);
  out.width = png_get_image_width(state.png, state.info);
  const size_t stride = static_cast<size_t>(out.width) * kRgbChannels;
  if (png_get_rowbytes(state.png, state.info) != stride) png_error(state.png, "unsupported PNG pixel layout");
  out.pixels.resize(stride * static_cast<size_t>(out.height));
  rows.resize(static_cast<size_t>(out.height));
  for (size_t y = 0; y < rows.size(); ++y) rows[y] = out.pixels.data() + stride * y;
  png_read_image(state.png, rows.data());
  png_read_end(state.png, nullptr);
  png_destroy_read_struct(&state.png, &state.info, nullptr);
  return "";
}

// --- files ---------------------------------------------------------------------------

/// uint8 [C, H, W] with C in `allowed` -> contiguous interleaved [H, W, C] on the CPU.
torch::Tensor interleaved(const torch::Tensor& image, const std::string& fn, const std::string& path,
                          std::initializer_list<int64_t> allowed) {
  bool ok = image.defined() && image.scalar_type() == torch::kByte && image.dim() == 3 && image.size(1) >= 1 &&
            image.size(2) >= 1 && image.size(1) <= kMaxImageSide && image.size(2) <= kMaxImageSide;
  if (ok) ok = std::find(allowed.begin(), allowed.end(), image.size(0)) != allowed.end();
  if (!ok) {
    std::string channels;
    for (int64_t c : allowed) channels += (channels.empty() ? "" : ", ") + std::to_string(c);
    throw Error(fn + "(" + in_quotes(path) + "): the image must be uint8 [C, H, W] with C in {" + channels +
                "} and 1.." + std::to_string(kMaxImageSide) + " pixels a side");
  }
  return image.cpu().permute({1, 2, 0}).contiguous();
}

}  // namespace

namespace detail {

void read_file_bytes(const std::string& path, std::vector<uint8_t>& out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int code = errno;
    if (code == ENOENT) throw NotFoundError("image file " + in_quotes(path) + " does not exist");
    throw Error("cannot open image file " + in_quotes(path) + ": " + std::strerror(code),
                "check the file's permissions");
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(in_quotes(path) + " is not a regular file", "an image folder holds image files only");
  }
  out.resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < out.size()) {
    const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int code = errno;
      ::close(fd);
      throw Error("cannot read image file " + in_quotes(path) + ": " + (n < 0 ? std::strerror(code) : "it shrank"),
                  "check the file and its permissions");
    }
    got += static_cast<size_t>(n);
  }
  ::close(fd);
}

void decode_rgb(const uint8_t* data, size_t size, const std::string& name, RgbImage& out) {
  std::string error;
  const char* format = nullptr;
  if (starts_with(data, size, kJpegMagic, sizeof kJpegMagic)) {
    format = "JPEG";
    error = decode_jpeg(data, size, out);
  } else if (starts_with(data, size, kPngMagic, sizeof kPngMagic)) {
    format = "PNG";
    thread_local std::vector<png_bytep> rows;
    error = decode_png(data, size, out, rows);
  } else {
    throw Error(in_quotes(name) + " is not a JPEG or PNG image" + (size == 0 ? " (the file is empty)" : ""),
                "an image folder may hold only JPEG (.jpg, .jpeg) and PNG (.png) images: convert the file, or "
                "remove it");
  }
  if (!error.empty())
    throw Error(std::string("cannot decode ") + format + " image " + in_quotes(name) + ": " + error, kDamagedHint);
  if (out.height < 1 || out.width < 1) {
    throw Error(std::string(format) + " image " + in_quotes(name) + " has no pixels", kDamagedHint);
  }
}

}  // namespace detail

torch::Tensor decode_image(const std::vector<uint8_t>& bytes, const std::string& name) {
  detail::RgbImage rgb;
  detail::decode_rgb(bytes.data(), bytes.size(), name, rgb);
  return torch::from_blob(rgb.pixels.data(), {rgb.height, rgb.width, kRgbChannels}, torch::kByte)
      .permute({2, 0, 1})
      .contiguous();
}

torch::Tensor read_image(const std::string& path) {
  std::vector<uint8_t> bytes;
  detail::read_file_bytes(path, bytes);
  return decode_image(bytes, path);
}

void write_png(const std::string& path, const torch::Tensor& image) {
  const torch::Tensor hwc = interleaved(image, "write_png", path, {1, 3, 4});
  png_image png{};
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(hwc.size(1));
  png.height = static_cast<png_uint_32>(hwc.size(0));
  const int64_t c = hwc.size(2);
  png.format = c == 1 ? PNG_FORMAT_GRAY : c == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_RGBA;
  png_alloc_size_t size = 0;
  const auto stride = static_cast<png_int_32>(hwc.size(1) * c);
  // The first call measures, the second writes.
  if (!png_image_write_to_memory(&png, nullptr, &size, 0, hwc.data_ptr<uint8_t>(), stride, nullptr)) {
    throw Error("cannot encode PNG " + in_quotes(path) + ": " + png.message);
  }
  std::vector<uint8_t> bytes(size);
  if (!png_image_write_to_memory(&png, bytes.data(), &size, 0, hwc.data_ptr<uint8_t>(), stride, nullptr)) {
    throw Error("cannot encode PNG " + in_quotes(path) + ": " + png.message);
  }
  write_file_atomically(path, bytes.data(), size, "PNG file");
}

void write_jpeg(const std::string& path, const torch::Tensor& image, int quality) {
  if (quality < 1 || quality > 100) {
    throw Error("write_jpeg(" + in_quotes(path) + "): quality must be in 1..100, got " + std::to_string(quality));
  }
  const torch::Tensor hwc = interleaved(image, "write_jpeg", path, {1, 3});
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  const std::string error = encode_jpeg(hwc.data_ptr<uint8_t>(), hwc.size(0), hwc.size(1),
                                        static_cast<int>(hwc.size(2)), quality, &buffer, &size);
  const std::unique_ptr<unsigned char, decltype(&std::free)> owned(buffer, &std::free);
  if (!error.empty()) throw Error("cannot encode JPEG " + in_quotes(path) + ": " + error);
  write_file_atomically(path, buffer, size, "JPEG file");
}

torch::Tensor resize_image(const torch::Tensor& image, int64_t height, int64_t width) {
  if (!image.defined() || image.scalar_type() != torch::kByte || image.dim() != 3) {
    throw Error("resize_image: the image must be uint8 [C, H, W]");
  }
  if (height < 1 || width < 1 || height > kMaxImageSide || width > kMaxImageSide) {
    throw Error("resize_image: the size must be 1.." + std::to_string(kMaxImageSide) + " a side, got " +
                std::to_string(height) + "x" + std::to_string(width));
  }
  if (image.size(1) == height && image.size(2) == width) return image.clone();
  namespace F = torch::nn::functional;
  const torch::Tensor x = image.to(torch::kFloat).unsqueeze(0);
  const torch::Tensor y = F::interpolate(x, F::InterpolateFuncOptions()
                                                .size(std::vector<int64_t>{height, width})
                                                .mode(torch::kBilinear)
                                                .align_corners(false)
                                                .antialias(true));
  return y.squeeze(0).round_().clamp_(0, 255).to(torch::kByte);
}

}  // namespace was::data
