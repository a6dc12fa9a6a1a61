// In-memory labelled image sets and their per-channel normalisation.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace was::data {

/// Per-channel normalisation, on the [0,1] pixel scale: x' = (x/255 - mean) / std.
struct Normalization {
  std::vector<double> mean, std;
};

/// An in-memory labelled image set.
struct Dataset {
  torch::Tensor images;  ///< uint8 [N, C, H, W], contiguous, CPU
  torch::Tensor labels;  ///< int64 [N], CPU, values in [0, num_classes)
  int64_t num_classes = 0;
  std::vector<std::string> class_names;  ///< empty, or one per class

  int64_t size() const;
  int64_t channels() const;
  int64_t height() const;
  int64_t width() const;
  /// Throws was::Error if shapes, dtypes, devices or the label range are
  /// inconsistent; `what` names the set in the message (e.g. "fashion-mnist train").
  void check(const std::string& what) const;
  /// The first min(n, size()) samples as a new Dataset with its own memory.
  Dataset head(int64_t n) const;
};

/// A dataset's halves, the normalisation computed from `train`, and its name.
/// `validation` is empty unless a run holds part of its training set out.
struct Split {
  Dataset train, test, validation;
  Normalization normalization;
  std::string name;
};

/// Splits `data` into (kept, held out): round(fraction * size) samples chosen
/// by a permutation drawn from was::CounterStream(seed, kValidation, 0, 0),
/// each part in the original order. Throws was::Error unless 0 < fraction < 1
/// and both parts are non-empty.
std::pair<Dataset, Dataset> hold_out(const Dataset& data, double fraction, uint64_t seed);

/// Mean and (population) standard deviation per channel over all images, on the
/// [0,1] scale. Exact: computed from per-channel histograms of the uint8 values.
Normalization compute_normalization(const Dataset& data);

/// uint8 images [N, C, H, W] -> float32 normalised [N, C, H, W] on `device`.
/// Throws was::Error if the dtype, rank or channel count do not fit `norm`.
torch::Tensor normalize(const torch::Tensor& images_u8, const Normalization& norm, torch::Device device = torch::kCPU);

}  // namespace was::data
