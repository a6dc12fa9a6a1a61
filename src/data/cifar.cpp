#include "was/data/cifar.h"

#include <filesystem>
#include <fstream>

#include "was/core/error.h"

namespace was::data {
namespace {

namespace fs = std::filesystem;

const char* const kCifar10Title = "CIFAR-10";
const char* const kCifar100Title = "CIFAR-100";
const char* const kCifar10Subdir = "cifar-10-batches-bin";  // what the official archive unpacks to
const char* const kCifar100Subdir = "cifar-100-binary";
const char* const kCifar10Meta = "batches.meta.txt";
const char* const kCifar100FineMeta = "fine_label_names.txt";
const char* const kCifar100CoarseMeta = "coarse_label_names.txt";
const char* const kCifar10Hint =
    "create the CIFAR-10 binary files from the JPEG archive with "
    "`python3 ../shared/datasets/cifar10-jpeg/to_cifar_bin.py DIR` (see ../shared/datasets/cifar10-jpeg/README.md), "
    "or unpack the official cifar-10-binary.tar.gz; then pass --data-dir DIR";
const char* const kCifar100Hint =
    "unpack the official cifar-100-binary.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html) and pass its "
    "cifar-100-binary directory as --data-dir";

/// One label byte of a record layout: where it sits and how many classes it names.
struct LabelByte {
  int64_t offset;
  int64_t classes;
  const char* name;  // for messages: "label", "coarse label", "fine label"
};

struct Layout {
  const char* dataset;  // "CIFAR-10" / "CIFAR-100"
  int64_t record_bytes;
  int64_t label_bytes;
  std::vector<LabelByte> labels;  // every label byte, each range-checked
  const char* hint;
};

Layout cifar10_layout() {
  return {kCifar10Title, kCifar10RecordBytes, kCifar10LabelBytes, {{0, kCifar10Classes, "label"}}, kCifar10Hint};
}

Layout cifar100_layout() {
  return {kCifar100Title,
          kCifar100RecordBytes,
          kCifar100LabelBytes,
          {{0, kCifar100CoarseClasses, "coarse label"}, {1, kCifar100FineClasses, "fine label"}},
          kCifar100Hint};
}

/// Reads all records of `path`; returns uint8 [N, record_bytes]. Checks the size first.
torch::Tensor read_records(const std::string& path, const Layout& layout, int64_t expected_records) {
  const std::string file = std::string(layout.dataset) + " file " + in_quotes(path);
  std::error_code ec;
  if (!fs::exists(path, ec)) throw NotFoundError(file + " does not exist", layout.hint);
  if (!fs::is_regular_file(path, ec)) throw Error(file + " is not a regular file", layout.hint);
  const auto size = static_cast<int64_t>(fs::file_size(path, ec));
  if (ec) throw Error("cannot read the size of " + file + ": " + ec.message());
  const std::string corrupt_hint =
      std::string("the file is truncated or is not a ") + layout.dataset + " binary file; re-create it: " + layout.hint;
  if (size == 0 || size % layout.record_bytes != 0) {
    std::string message = file + " has " + std::to_string(size) + " bytes, not a whole number of " +
                          std::to_string(layout.record_bytes) + "-byte records (" + std::to_string(layout.label_bytes) +
                          " label byte" + (layout.label_bytes > 1 ? "s" : "") + " + " +
                          std::to_string(kCifarPixelBytes) + " pixels)";
    const int64_t other = layout.record_bytes == kCifar10RecordBytes ? kCifar100RecordBytes : kCifar10RecordBytes;
    if (size > 0 && size % other == 0) {
      message += "; its size fits the " + std::string(other == kCifar10RecordBytes ? "CIFAR-10" : "CIFAR-100") +
                 " layout instead";
    }
    throw Error(message, corrupt_hint);
  }
  const int64_t records = size / layout.record_bytes;
  if (expected_records > 0 && records != expected_records) {
    throw Error(file + " holds " + std::to_string(records) + " records, expected " + std::to_string(expected_records),
                corrupt_hint);
  }
  torch::Tensor raw = torch::empty({records, layout.record_bytes}, torch::kByte);
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(raw.data_ptr<uint8_t>()), static_cast<std::streamsize>(size));
  if (!in || in.gcount() != size) {
    throw Error(
        "cannot read " + file + ": got " + std::to_string(in.gcount()) + " of " + std::to_string(size) + " bytes",
        "check the file and its permissions");
  }
  return raw;
}

/// Splits records into a Dataset carrying label byte `use`; range-checks every label byte.
Dataset to_dataset(const torch::Tensor& raw, const Layout& layout, size_t use, const std::string& path) {
  for (const LabelByte& label : layout.labels) {
    const torch::Tensor column = raw.select(1, label.offset);
    const torch::Tensor bad = (column >= label.classes).nonzero();
    if (bad.size(0) > 0) {
      const int64_t record = bad[0][0].item<int64_t>();
      throw Error(std::string(layout.dataset) + " file " + in_quotes(path) + ": record " + std::to_string(record) +
                      " has " + label.name + " " + std::to_string(column[record].item<int64_t>()) + ", outside 0.." +
                      std::to_string(label.classes - 1),
                  std::string("the file is corrupt or is not a ") + layout.dataset +
                      " binary file; re-create it: " + layout.hint);
    }
  }
  const int64_t n = raw.size(0);
  Dataset data;
  data.images = raw.narrow(1, layout.label_bytes, kCifarPixelBytes)
                    .contiguous()
                    .view({n, kCifarChannels, kCifarImageSide, kCifarImageSide});
  data.labels = raw.select(1, layout.labels[use].offset).to(torch::kLong);
  data.num_classes = layout.labels[use].classes;
  return data;
}

/// `dir`, or its subdirectory `subdir` when that is where `marker` lies.
fs::path resolve_dir(const std::string& dir, const std::string& marker, const char* subdir, const char* dataset,
                     const char* hint) {
  const std::string what = std::string(dataset) + " directory " + in_quotes(dir);
  std::error_code ec;
  if (dir.empty()) throw Error(std::string(dataset) + " has no default location", hint);
  if (!fs::exists(dir, ec)) throw NotFoundError(what + " does not exist", hint);
  if (!fs::is_directory(dir, ec)) throw Error(what + " is not a directory", hint);
  if (fs::exists(fs::path(dir) / marker, ec)) return dir;
  if (fs::exists(fs::path(dir) / subdir / marker, ec)) return fs::path(dir) / subdir;
  throw Error(what + " holds no " + marker + " (nor " + subdir + "/" + marker + ")", hint);
}

/// Class names from a text file, one a line (blank lines ignored), or `fallback`
/// when the file is absent. A file with the wrong count is an error.
std::vector<std::string> class_names(const fs::path& path, const std::vector<std::string>& fallback) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return fallback;
  std::ifstream in(path);
  if (!in) throw Error("cannot read class names from " + in_quotes(path.string()), "check the file's permissions");
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    const auto end = line.find_last_not_of(" \t\r\n");
    if (end == std::string::npos) continue;
    names.push_back(line.substr(0, end + 1));
  }
  if (names.size() != fallback.size()) {
    throw Error(in_quotes(path.string()) + " holds " + std::to_string(names.size()) + " class names, expected " +
                    std::to_string(fallback.size()),
                "one name a line; fix or remove the file (the standard names are used without it)");
  }
  return names;
}

}  // namespace

const std::vector<std::string>& cifar10_class_names() {
  static const std::vector<std::string> names = {"airplane", "automobile", "bird",  "cat",  "deer",
                                                 "dog",      "frog",       "horse", "ship", "truck"};
  return names;
}

const std::vector<std::string>& cifar100_class_names(CifarLabels labels) {
  static const std::vector<std::string> fine = {
      "apple",      "aquarium_fish", "baby",         "bear",       "beaver",      "bed",         "bee",
      "beetle",     "bicycle",       "bottle",       "bowl",       "boy",         "bridge",      "bus",
      "butterfly",  "camel",         "can",          "castle",     "caterpillar", "cattle",      "chair",
      "chimpanzee", "clock",         "cloud",        "cockroach",  "couch",       "crab",        "crocodile",
      "cup",        "dinosaur",      "dolphin",      "elephant",   "flatfish",    "forest",      "fox",
      "girl",       "hamster",       "house",        "kangaroo",   "keyboard",    "lamp",        "lawn_mower",
      "leopard",    "lion",          "lizard",       "lobster",    "man",         "maple_tree",  "motorcycle",
      "mountain",   "mouse",         "mushroom",     "oak_tree",   "orange",      "orchid",      "otter",
      "palm_tree",  "pear",          "pickup_truck", "pine_tree",  "plain",       "plate",       "poppy",
      "porcupine",  "possum",        "rabbit",       "raccoon",    "ray",         "road",        "rocket",
      "rose",       "sea",           "seal",         "shark",      "shrew",       "skunk",       "skyscraper",
      "snail",      "snake",         "spider",       "squirrel",   "streetcar",   "sunflower",   "sweet_pepper",
      "table",      "tank",          "telephone",    "television", "tiger",       "tractor",     "train",
      "trout",      "tulip",         "turtle",       "wardrobe",   "whale",       "willow_tree", "wolf",
      "woman",      "worm"};
  static const std::vector<std::string> coarse = {"aquatic_mammals",
                                                  "fish",
                                                  "flowers",
                                                  "food_containers",
                                                  "fruit_and_vegetables",
                                                  "household_electrical_devices",
                                                  "household_furniture",
                                                  "insects",
                                                  "large_carnivores",
                                                  "large_man-made_outdoor_things",
                                                  "large_natural_outdoor_scenes",
                                                  "large_omnivores_and_herbivores",
                                                  "medium_mammals",
                                                  "non-insect_invertebrates",
                                                  "people",
                                                  "reptiles",
                                                  "small_mammals",
                                                  "trees",
                                                  "vehicles_1",
                                                  "vehicles_2"};
  return labels == CifarLabels::kFine ? fine : coarse;
}

Dataset read_cifar10_file(const std::string& path, int64_t expected_records) {
  const Layout layout = cifar10_layout();
  return to_dataset(read_records(path, layout, expected_records), layout, 0, path);
}

Dataset read_cifar100_file(const std::string& path, CifarLabels labels, int64_t expected_records) {
  const Layout layout = cifar100_layout();
  return to_dataset(read_records(path, layout, expected_records), layout, labels == CifarLabels::kFine ? 1 : 0, path);
}

Split load_cifar10(const std::string& dir, const CifarOptions& options) {
  const fs::path root = resolve_dir(dir, "data_batch_1.bin", kCifar10Subdir, kCifar10Title, kCifar10Hint);
  const int64_t expected = options.check_counts ? kCifar10RecordsPerFile : 0;
  const auto names = class_names(root / kCifar10Meta, cifar10_class_names());
  std::vector<torch::Tensor> images, labels;
  for (int64_t b = 1; b <= kCifar10TrainFiles; ++b) {
    Dataset part = read_cifar10_file((root / ("data_batch_" + std::to_string(b) + ".bin")).string(), expected);
    images.push_back(part.images);
    labels.push_back(part.labels);
  }
  Split split;
  split.name = "cifar10";
  split.train.images = torch::cat(images);
  split.train.labels = torch::cat(labels);
  images.clear();
  split.train.num_classes = kCifar10Classes;
  split.train.class_names = names;
  split.train.check("cifar10 train");
  if (!options.training_only) {
    split.test = read_cifar10_file((root / "test_batch.bin").string(), expected);
    split.test.class_names = names;
    split.test.check("cifar10 test");
  }
  split.normalization = compute_normalization(split.train);
  return split;
}

Split load_cifar100(const std::string& dir, const CifarOptions& options) {
  const fs::path root = resolve_dir(dir, "train.bin", kCifar100Subdir, kCifar100Title, kCifar100Hint);
  const bool fine = options.labels == CifarLabels::kFine;
  const auto names =
      class_names(root / (fine ? kCifar100FineMeta : kCifar100CoarseMeta), cifar100_class_names(options.labels));
  Split split;
  split.name = "cifar100";
  split.train = read_cifar100_file((root / "train.bin").string(), options.labels,
                                   options.check_counts ? kCifar100TrainRecords : 0);
  split.train.class_names = names;
  split.train.check("cifar100 train");
  if (!options.training_only) {
    split.test = read_cifar100_file((root / "test.bin").string(), options.labels,
                                    options.check_counts ? kCifar100TestRecords : 0);
    split.test.class_names = names;
    split.test.check("cifar100 test");
  }
  split.normalization = compute_normalization(split.train);
  return split;
}

}  // namespace was::data
