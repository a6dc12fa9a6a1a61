// The data sets the project knows by name: Fashion-MNIST from IDX files,
// CIFAR-10 and CIFAR-100 from their binary files, image folders, and a
// synthetic task for tests and smoke runs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "was/data/cifar.h"
#include "was/data/dataset.h"

namespace was::data {

/// Where Debian's dataset-fashion-mnist package puts the files.
constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/// Loads Fashion-MNIST (60000 train, 10000 test, 1x28x28, 10 classes) from the
/// four IDX files in `dir`, gzipped or not. The normalisation is the train
/// split's. Throws was::Error naming the directory or file at fault.
Split load_fashion_mnist(const std::string& dir = kFashionMnistDir, bool training_only = false);

/// Shape and seed of the synthetic task.
struct SyntheticOptions {
  int64_t train_size = 512, test_size = 256, num_classes = 4, channels = 1, image_size = 16;
  uint64_t seed = 0;
};

/// A deterministic, learnable task: each class is a bar with its own
/// orientation, position and channel tint, jittered and drawn over noise.
/// Randomness comes only from was::CounterStream, so it is identical on every
/// machine and thread count. Labels cycle 0, 1, ..., so classes are balanced.
Split make_synthetic(const SyntheticOptions& options = {});

/// What a data set may need beyond its name and directory.
struct DatasetOptions {
  SyntheticOptions synthetic;                        ///< "synthetic"
  CifarLabels cifar100_labels = CifarLabels::kFine;  ///< "cifar100": fine (100) or coarse (20) classes
  int64_t image_size = 0;                            ///< "imagefolder": resize to this square size (0: keep)
  int64_t decode_threads = 0;                        ///< "imagefolder": decoding threads (0: every core)
  /// Load the training split only: the test split comes back empty and its
  /// files are never opened (what a choice made on held-out data needs).
  bool training_only = false;
};

/// The names load_dataset accepts.
std::vector<std::string> dataset_names();

/// Loads a data set by name: "fashion-mnist" from `dir` (empty: kFashionMnistDir),
/// "cifar10" and "cifar100" (binary files, see cifar.h) and "imagefolder"
/// (`dir`/train/<class>/..., `dir`/test/<class>/..., see image_folder.h) from
/// `dir`, which they require, or "synthetic" (`dir` unused). Unknown names,
/// and options that do not apply to the data set, throw was::Error.
Split load_dataset(const std::string& name, const std::string& dir, const DatasetOptions& options);

/// As above, with default options except for the synthetic task.
Split load_dataset(const std::string& name, const std::string& dir, const SyntheticOptions& synthetic = {});

/// Whether training on `name` uses random crop + flip unless told otherwise:
/// yes for natural images (cifar10, cifar100, imagefolder), no for
/// fashion-mnist and synthetic (whose classes are positions and orientations).
bool augments_by_default(const std::string& name);

}  // namespace was::data
