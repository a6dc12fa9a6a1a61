#include "was/data/datasets.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "was/core/error.h"
#include "was/core/rng.h"
#include "was/data/idx.h"
#include "was/data/image_folder.h"

namespace was::data {
namespace {

namespace fs = std::filesystem;

constexpr const char* kFashionMnistName = "fashion-mnist";
constexpr const char* kSyntheticName = "synthetic";
constexpr const char* kCifar10Name = "cifar10";
constexpr const char* kCifar100Name = "cifar100";
constexpr const char* kImageFolderName = "imagefolder";
constexpr int64_t kFashionMnistClasses = 10;
const char* const kFashionMnistHint =
    "install it with `apt-get install dataset-fashion-mnist`, or pass --data-dir pointing at a "
    "directory with the four *-idx?-ubyte[.gz] files";

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

/// `dir/base.gz`, else `dir/base`; throws naming both when neither exists.
std::string find_idx_file(const fs::path& dir, const std::string& base) {
  std::error_code ec;
  const fs::path gz = dir / (base + ".gz");
  if (fs::is_regular_file(gz, ec)) return gz.string();
  const fs::path raw = dir / base;
  if (fs::is_regular_file(raw, ec)) return raw.string();
  throw NotFoundError("dataset directory '" + dir.string() + "' has neither '" + gz.filename().string() + "' nor '" +
                          raw.filename().string() + "'",
                      kFashionMnistHint);
}

Dataset load_idx_pair(const fs::path& dir, const std::string& prefix, const std::string& what) {
  const std::string images_path = find_idx_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_idx_file(dir, prefix + "-labels-idx1-ubyte");
  Dataset data;
  data.images = read_idx_images(images_path);
  data.labels = read_idx_labels(labels_path);
  if (data.images.size(0) != data.labels.size(0)) {
    throw Error("'" + images_path + "' holds " + std::to_string(data.images.size(0)) + " images but '" + labels_path +
                    "' holds " + std::to_string(data.labels.size(0)) + " labels",
                "the two files must come from the same release; re-install the data set");
  }
  data.num_classes = kFashionMnistClasses;
  data.class_names = fashion_mnist_classes();
  const int64_t max_label = data.labels.numel() > 0 ? data.labels.max().item<int64_t>() : 0;
  if (max_label >= kFashionMnistClasses) {
    throw Error("'" + labels_path + "' holds label " + std::to_string(max_label) + ", but Fashion-MNIST has " +
                    std::to_string(kFashionMnistClasses) + " classes",
                "is this a Fashion-MNIST label file?");
  }
  data.check(what);
  return data;
}

void check_synthetic(const SyntheticOptions& o) {
  const std::string hint = "choose a positive size, 2..1000 classes, 1..64 channels and 4..1024 pixels";
  auto require = [&](bool ok, const std::string& what) {
    if (!ok) throw Error("synthetic data set: " + what, hint);
  };
  require(o.train_size >= 1, "train_size must be >= 1, got " + std::to_string(o.train_size));
  require(o.test_size >= 1, "test_size must be >= 1, got " + std::to_string(o.test_size));
  require(o.num_classes >= 2 && o.num_classes <= 1000,
          "num_classes must be in [2, 1000], got " + std::to_string(o.num_classes));
  require(o.channels >= 1 && o.channels <= 64, "channels must be in [1, 64], got " + std::to_string(o.channels));
  require(o.image_size >= 4 && o.image_size <= 1024,
          "image_size must be in [4, 1024], got " + std::to_string(o.image_size));
}

/// Brightness of a bar of half-length `len` and half-width `width`, direction
/// (ux, uy), at offset (dx, dy) from its centre: 1 on the bar, falling off beside it.
/// Rational fall-offs instead of exp(): basic IEEE operations round the same
/// everywhere, so the bytes are identical on every machine.
double bar(double dx, double dy, double ux, double uy, double len, double width) {
  const double across = (dx * uy - dy * ux) / width;
  const double beyond = std::max(std::abs(dx * ux + dy * uy) - len, 0.0) / width;
  const double a2 = across * across, b2 = beyond * beyond;
  return 1.0 / ((1.0 + a2 * a2) * (1.0 + b2 * b2));
}

/// Renders `count` samples of one half (`part`: 0 train, 1 test) of the synthetic task.
Dataset render_synthetic(const SyntheticOptions& o, uint64_t part, int64_t count) {
  const int64_t k_classes = o.num_classes, c = o.channels, s = o.image_size;
  const double size = static_cast<double>(s);
  const double centre = (size - 1.0) / 2.0;
  // Geometry relative to the image size, so every size gets the same task. The
  // jitter, clutter and noise keep it from being solved in a handful of steps.
  const double ring = 0.22 * size;  // distance of a class bar's centre from the middle
  const double half_length = 0.22 * size;
  const double half_width = std::max(0.06 * size, 0.75);
  const double jitter = 0.12 * size;                                        // pixels
  const double angle_jitter = 0.5 * M_PI / static_cast<double>(k_classes);  // half the gap
  const double noise = 0.2;

  Dataset data;
  data.images = torch::empty({count, c, s, s}, torch::kByte);
  data.labels = torch::empty({count}, torch::kLong);
  data.num_classes = k_classes;
  for (int64_t k = 0; k < k_classes; ++k) data.class_names.push_back("class-" + std::to_string(k));

  uint8_t* pixels = data.images.data_ptr<uint8_t>();
  int64_t* labels = data.labels.data_ptr<int64_t>();
  // One stream per sample: the result does not depend on the thread count.
  at::parallel_for(0, count, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t k = i % k_classes;
      labels[i] = k;
      CounterStream rng(o.seed, StreamDomain::kSynthetic, part, static_cast<uint64_t>(i));
      // Class k: a bar at angle pi*k/K whose centre sits on a ring at 2*pi*k/K,
      // so neighbouring classes differ in both orientation and position.
      const double phi = 2.0 * M_PI * static_cast<double>(k) / static_cast<double>(k_classes);
      const double theta =
          M_PI * static_cast<double>(k) / static_cast<double>(k_classes) + rng.uniform(-angle_jitter, angle_jitter);
      const double cx = centre + ring * std::cos(phi) + rng.uniform(-jitter, jitter);
      const double cy = centre + ring * std::sin(phi) + rng.uniform(-jitter, jitter);
      const double amplitude = rng.uniform(0.4, 1.0);
      const double ux = std::cos(theta), uy = std::sin(theta);
      // A fainter grey bar anywhere, at any angle: clutter that carries no label.
      const double clutter_angle = rng.uniform(0.0, M_PI);
      const double clutter_x = rng.uniform(0.0, size - 1.0), clutter_y = rng.uniform(0.0, size - 1.0);
      const double clutter_amplitude = rng.uniform(0.2, 0.6);
      const double vx = std::cos(clutter_angle), vy = std::sin(clutter_angle);
      const double background = rng.uniform(0.0, 0.25);
      uint8_t* out = pixels + i * c * s * s;
      for (int64_t ch = 0; ch < c; ++ch) {
        const double tint = c == 1 ? 1.0 : 0.65 + 0.35 * std::cos(phi + 2.0 * M_PI * static_cast<double>(ch) / c);
        for (int64_t y = 0; y < s; ++y) {
          for (int64_t x = 0; x < s; ++x) {
            const double px = static_cast<double>(x), py = static_cast<double>(y);
            double v = background + amplitude * tint * bar(px - cx, py - cy, ux, uy, half_length, half_width) +
                       clutter_amplitude * bar(px - clutter_x, py - clutter_y, vx, vy, 0.5 * half_length, half_width) +
                       rng.uniform(-noise, noise);
            v = std::clamp(v, 0.0, 1.0);
            *out++ = static_cast<uint8_t>(std::floor(v * 255.0 + 0.5));
          }
        }
      }
    }
  });
  return data;
}

}  // namespace

Split load_fashion_mnist(const std::string& dir, bool training_only) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    throw NotFoundError("dataset directory '" + dir + "' does not exist", kFashionMnistHint);
  }
  if (!fs::is_directory(dir, ec)) {
    throw Error("dataset directory '" + dir + "' is not a directory", kFashionMnistHint);
  }
  Split split;
  split.name = kFashionMnistName;
  split.train = load_idx_pair(dir, "train", "fashion-mnist train");
  if (!training_only) split.test = load_idx_pair(dir, "t10k", "fashion-mnist test");
  split.normalization = compute_normalization(split.train);
  return split;
}

Split make_synthetic(const SyntheticOptions& options) {
  check_synthetic(options);
  Split split;
  split.name = kSyntheticName;
  split.train = render_synthetic(options, 0, options.train_size);
  split.test = render_synthetic(options, 1, options.test_size);
  split.train.check("synthetic train");
  split.test.check("synthetic test");
  split.normalization = compute_normalization(split.train);
  return split;
}

std::vector<std::string> dataset_names() {
  return {kCifar10Name, kCifar100Name, kFashionMnistName, kImageFolderName, kSyntheticName};
}

Split load_dataset(const std::string& name, const std::string& dir, const DatasetOptions& options) {
  const std::vector<std::string> names = dataset_names();
  const bool known = std::find(names.begin(), names.end(), name) != names.end();
  if (known && name != kImageFolderName && options.image_size != 0) {
    throw Error("an image size applies to data set '" + std::string(kImageFolderName) + "' only, not '" + name + "'",
                "drop --image-size");
  }
  if (known && name != kCifar100Name && options.cifar100_labels != CifarLabels::kFine) {
    throw Error("coarse labels apply to data set '" + std::string(kCifar100Name) + "' only, not '" + name + "'",
                "drop --coarse-labels");
  }
  if (name == kFashionMnistName) return load_fashion_mnist(dir.empty() ? kFashionMnistDir : dir, options.training_only);
  if (name == kSyntheticName) {
    Split split = make_synthetic(options.synthetic);
    if (options.training_only) split.test = Dataset{};
    return split;
  }
  CifarOptions cifar;
  cifar.training_only = options.training_only;
  if (name == kCifar10Name) return load_cifar10(dir, cifar);
  if (name == kCifar100Name) {
    cifar.labels = options.cifar100_labels;
    return load_cifar100(dir, cifar);
  }
  if (name == kImageFolderName) {
    if (dir.empty()) {
      throw Error("data set 'imagefolder' has no default location",
                  "pass --data-dir DIR with DIR/train/<class>/<image> and DIR/test/<class>/<image> "
                  "(.jpg, .jpeg or .png)");
    }
    ImageFolderOptions folder;
    folder.image_size = options.image_size;
    folder.threads = options.decode_threads;
    folder.training_only = options.training_only;
    return load_image_folder_split(dir, folder);
  }
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  throw Error("unknown data set '" + name + "'", "known data sets: " + list);
}

Split load_dataset(const std::string& name, const std::string& dir, const SyntheticOptions& synthetic) {
  DatasetOptions options;
  options.synthetic = synthetic;
  return load_dataset(name, dir, options);
}

bool augments_by_default(const std::string& name) {
  return name == kCifar10Name || name == kCifar100Name || name == kImageFolderName;
}

}  // namespace was::data
