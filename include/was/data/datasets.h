// The data sets the project knows by name: Fashion-MNIST from IDX files, and a
// synthetic task for tests and smoke runs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "was/data/dataset.h"

namespace was::data {

/// Where Debian's dataset-fashion-mnist package puts the files.
constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/// Loads Fashion-MNIST (60000 train, 10000 test, 1x28x28, 10 classes) from the
/// four IDX files in `dir`, gzipped or not. The normalisation is the train
/// split's. Throws was::Error naming the directory or file at fault.
Split load_fashion_mnist(const std::string& dir = kFashionMnistDir);

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

/// The names load_dataset accepts.
std::vector<std::string> dataset_names();

/// Loads a data set by name: "fashion-mnist" from `dir` (empty: kFashionMnistDir),
/// or "synthetic" from `synthetic` (`dir` unused). Unknown names throw was::Error.
Split load_dataset(const std::string& name, const std::string& dir,
                   const SyntheticOptions& synthetic = {});

}  // namespace was::data
