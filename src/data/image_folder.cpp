#include "was/data/image_folder.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include "was/core/error.h"
#include "was/data/image.h"

namespace was::data {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kChannels = 3;
constexpr size_t kMaxNamesInMessage = 10;
const char* const kLayoutHint =
    "an image folder holds one subfolder per class with its images, ROOT/<class>/<image>.jpg|.jpeg|.png; "
    "for training, ROOT/train/<class>/... and ROOT/test/<class>/...";
const char* const kResizeHint = "pass --image-size N (ImageFolderOptions::image_size) to resize every image to N x N";

bool is_hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

bool has_image_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

std::string size_string(int64_t h, int64_t w) { return std::to_string(w) + "x" + std::to_string(h); }

std::string name_list(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < kMaxNamesInMessage; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > kMaxNamesInMessage) out += ", ... (" + std::to_string(names.size()) + " in all)";
  return out;
}

void require_directory(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw NotFoundError(what + " " + in_quotes(path) + " does not exist", kLayoutHint);
  if (!fs::is_directory(path, ec)) throw Error(what + " " + in_quotes(path) + " is not a directory", kLayoutHint);
}

/// Interleaved RGB -> the planes of one [3, H, W] slot.
void to_planar(const detail::RgbImage& rgb, uint8_t* dst) {
  const int64_t plane = rgb.height * rgb.width;
  const uint8_t* src = rgb.pixels.data();
  for (int64_t c = 0; c < kChannels; ++c) {
    uint8_t* out = dst + c * plane;
    for (int64_t p = 0; p < plane; ++p) out[p] = src[p * kChannels + c];
  }
}

/// The size every image ends up with, and whether others are resized to it.
struct Target {
  int64_t height = 0, width = 0;
  bool resize = false;
  std::string reference;  // for a size mismatch: what fixed the size
};

/// Decodes `files` into uint8 [N, 3, H, W] on `threads` threads. The first
/// failure (lowest index) is rethrown once all threads have stopped.
// The decoded set lives in memory: refuse one that cannot, before allocating
// it (a typo such as --image-size 16000 would ask for tens of gigabytes).
void check_fits_in_memory(int64_t images, const Target& target) {
  const double bytes = double(images) * double(kChannels) * double(target.height) * double(target.width);
  const double memory = double(::sysconf(_SC_PHYS_PAGES)) * double(::sysconf(_SC_PAGESIZE));
  if (memory <= 0 || bytes <= memory / 2) return;
  const auto gib = [](double b) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f GiB", b / double(1ull << 30));
    return std::string(text);
  };
  throw Error(std::to_string(images) + " images of " + std::to_string(kChannels) + "x" + std::to_string(target.height) +
                  "x" + std::to_string(target.width) + " would need " + gib(bytes) +
                  " in memory, more than half of this machine's " + gib(memory),
              target.resize ? "pass a smaller --image-size" : "resize the images, or pass a smaller --image-size");
}

torch::Tensor decode_all(const std::vector<std::string>& files, const Target& target, int64_t threads) {
  const auto n = static_cast<int64_t>(files.size());
  const int64_t slot = kChannels * target.height * target.width;
  check_fits_in_memory(n, target);
  torch::Tensor images = torch::empty({n, kChannels, target.height, target.width}, torch::kByte);
  uint8_t* out = images.data_ptr<uint8_t>();

  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mutex;
  int64_t error_index = n;
  std::optional<Error> error;
  auto record = [&](int64_t i, const Error& e) {
    std::lock_guard<std::mutex> lock(mutex);
    if (i < error_index) {
      error_index = i;
      error = e;
    }
    failed = true;
  };

  auto work = [&] {
    std::vector<uint8_t> bytes;
    detail::RgbImage rgb;
    for (int64_t i = next++; i < n && !failed; i = next++) {
      const std::string& file = files[static_cast<size_t>(i)];
      try {
        detail::read_file_bytes(file, bytes);
        detail::decode_rgb(bytes.data(), bytes.size(), file, rgb);
        uint8_t* dst = out + i * slot;
        if (rgb.height == target.height && rgb.width == target.width) {
          to_planar(rgb, dst);
        } else if (target.resize) {
          const torch::Tensor chw =
              torch::from_blob(rgb.pixels.data(), {rgb.height, rgb.width, kChannels}, torch::kByte).permute({2, 0, 1});
          const torch::Tensor resized = resize_image(chw, target.height, target.width);
          std::memcpy(dst, resized.data_ptr<uint8_t>(), static_cast<size_t>(slot));
        } else {
          throw Error("images of mixed sizes: " + in_quotes(file) + " is " + size_string(rgb.height, rgb.width) + ", " +
                          target.reference + " " + size_string(target.height, target.width),
                      kResizeHint);
        }
      } catch (const Error& e) {
        record(i, e);
      } catch (const std::exception& e) {
        record(i, Error("cannot read image " + in_quotes(file) + ": " + e.what()));
      }
    }
  };

  const int64_t count = std::max<int64_t>(1, std::min(threads, n));
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < count; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) throw *error;
  return images;
}

int64_t thread_count(const ImageFolderOptions& options) {
  if (options.threads > 0) return options.threads;
  return std::max<int64_t>(1, static_cast<int64_t>(std::thread::hardware_concurrency()));
}

/// load_image_folder with an optional fixed size (the train images', for the test split).
Dataset load_folder(const std::string& root, const ImageFolderOptions& options, std::vector<std::string> classes,
                    const std::optional<std::pair<int64_t, int64_t>>& size, const std::string& size_reference) {
  if (options.image_size < 0 || options.image_size > kMaxImageSide) {
    throw Error(
        "image size must be in 0.." + std::to_string(kMaxImageSide) + ", got " + std::to_string(options.image_size),
        "0 keeps the images' own size");
  }
  if (options.threads < 0) throw Error("decoding threads must not be negative, got " + std::to_string(options.threads));
  const std::vector<std::string> folders = image_folder_classes(root);
  if (classes.empty()) {
    classes = folders;
  } else {
    for (const auto& f : folders) {
      if (std::find(classes.begin(), classes.end(), f) == classes.end()) {
        throw Error("class folder " + in_quotes((fs::path(root) / f).string()) + " is not one of the classes " +
                        name_list(classes),
                    "the test split may use only classes that the train split has");
      }
    }
  }

  std::vector<std::string> files;
  std::vector<int64_t> labels;
  for (size_t k = 0; k < classes.size(); ++k) {
    if (std::find(folders.begin(), folders.end(), classes[k]) == folders.end()) continue;
    for (auto& f : image_folder_files((fs::path(root) / classes[k]).string())) {
      files.push_back(std::move(f));
      labels.push_back(static_cast<int64_t>(k));
    }
  }

  Target target;
  if (options.image_size > 0) {
    target = {options.image_size, options.image_size, true, ""};
  } else if (size) {
    target = {size->first, size->second, false, size_reference};
  } else {
    // No size given: the first image fixes it.
    const torch::Tensor first = read_image(files.front());
    target = {first.size(1), first.size(2), false, "but the first image " + in_quotes(files.front()) + " is"};
  }

  Dataset data;
  data.images = decode_all(files, target, thread_count(options));
  data.labels = torch::tensor(labels, torch::kLong);
  data.num_classes = static_cast<int64_t>(classes.size());
  data.class_names = classes;
  data.check("image folder " + root);
  return data;
}

}  // namespace

std::vector<std::string> image_folder_classes(const std::string& root) {
  require_directory(root, "image folder");
  std::vector<std::string> classes;
  std::error_code ec;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_directory(type_ec) && !is_hidden(it->path())) classes.push_back(it->path().filename().string());
  }
  if (ec) throw Error("cannot list image folder " + in_quotes(root) + ": " + ec.message(), "check its permissions");
  if (classes.empty()) throw Error("image folder " + in_quotes(root) + " holds no class folders", kLayoutHint);
  std::sort(classes.begin(), classes.end());
  return classes;
}

std::vector<std::string> image_folder_files(const std::string& class_dir) {
  require_directory(class_dir, "class folder");
  std::vector<std::string> files;
  std::error_code ec;
  const auto opts = fs::directory_options::follow_directory_symlink;
  for (fs::recursive_directory_iterator it(class_dir, opts, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    std::error_code type_ec;
    if (is_hidden(p)) {
      if (it->is_directory(type_ec)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_directory(type_ec)) continue;
    if (!it->is_regular_file(type_ec) || !has_image_extension(p)) {
      throw Error(in_quotes(p.string()) + " in image folder is not a .jpg, .jpeg or .png image file",
                  "an image folder may hold only JPEG and PNG images: convert the file, or move it out");
    }
    files.push_back(p.string());
  }
  if (ec)
    throw Error("cannot list class folder " + in_quotes(class_dir) + ": " + ec.message(), "check its permissions");
  if (files.empty()) {
    throw Error("class folder " + in_quotes(class_dir) + " holds no images",
                "add .jpg, .jpeg or .png images to it, or remove the folder");
  }
  std::sort(files.begin(), files.end());
  return files;
}

Dataset load_image_folder(const std::string& root, const ImageFolderOptions& options,
                          const std::vector<std::string>& classes) {
  return load_folder(root, options, classes, std::nullopt, "");
}

Split load_image_folder_split(const std::string& root, const ImageFolderOptions& options) {
  require_directory(root, "image folder");
  const fs::path train = fs::path(root) / "train", test = fs::path(root) / "test";
  std::error_code ec;
  if (!fs::is_directory(train, ec) || (!options.training_only && !fs::is_directory(test, ec))) {
    throw Error("image folder " + in_quotes(root) + " needs a train/ and a test/ subfolder", kLayoutHint);
  }
  Split split;
  split.name = "imagefolder";
  split.train = load_folder(train.string(), options, {}, std::nullopt, "");
  if (!options.training_only)
    split.test = load_folder(test.string(), options, split.train.class_names,
                             std::make_pair(split.train.height(), split.train.width()), "but the train images are");
  split.normalization = compute_normalization(split.train);
  return split;
}

}  // namespace was::data
