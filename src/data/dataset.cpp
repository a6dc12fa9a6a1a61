#include "was/data/dataset.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <sstream>

#include "was/core/error.h"
#include "was/core/rng.h"

namespace was::data {
namespace {

constexpr double kPixelScale = 255.0;
constexpr int64_t kPixelValues = 256;

std::string shape_string(const torch::Tensor& t) {
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

}  // namespace

int64_t Dataset::size() const { return images.defined() ? images.size(0) : 0; }
int64_t Dataset::channels() const { return images.defined() ? images.size(1) : 0; }
int64_t Dataset::height() const { return images.defined() ? images.size(2) : 0; }
int64_t Dataset::width() const { return images.defined() ? images.size(3) : 0; }

void Dataset::check(const std::string& what) const {
  const std::string prefix = "dataset '" + what + "': ";
  const std::string hint = "the data files may be corrupt; re-install or re-download them";
  if (!images.defined() || !labels.defined()) {
    throw Error(prefix + "images or labels are missing", hint);
  }
  if (images.scalar_type() != torch::kByte || images.dim() != 4) {
    throw Error(prefix + "images must be uint8 [N, C, H, W], got " + std::string(c10::toString(images.scalar_type())) +
                    " " + shape_string(images),
                hint);
  }
  if (!images.device().is_cpu() || !images.is_contiguous()) {
    throw Error(prefix + "images must be a contiguous CPU tensor", hint);
  }
  if (images.size(1) < 1 || images.size(2) < 1 || images.size(3) < 1) {
    throw Error(prefix + "images have an empty dimension: " + shape_string(images), hint);
  }
  if (labels.scalar_type() != torch::kLong || labels.dim() != 1 || !labels.device().is_cpu()) {
    throw Error(prefix + "labels must be an int64 [N] CPU tensor, got " +
                    std::string(c10::toString(labels.scalar_type())) + " " + shape_string(labels),
                hint);
  }
  if (labels.size(0) != images.size(0)) {
    throw Error(prefix + std::to_string(images.size(0)) + " images but " + std::to_string(labels.size(0)) + " labels",
                hint);
  }
  if (num_classes < 1) {
    throw Error(prefix + "num_classes must be at least 1, got " + std::to_string(num_classes));
  }
  if (!class_names.empty() && static_cast<int64_t>(class_names.size()) != num_classes) {
    throw Error(prefix + std::to_string(class_names.size()) + " class names for " + std::to_string(num_classes) +
                " classes");
  }
  if (labels.numel() > 0) {
    const int64_t lo = labels.min().item<int64_t>();
    const int64_t hi = labels.max().item<int64_t>();
    if (lo < 0 || hi >= num_classes) {
      throw Error(prefix + "labels range over [" + std::to_string(lo) + ", " + std::to_string(hi) + "], outside [0, " +
                      std::to_string(num_classes) + ")",
                  hint);
    }
  }
}

Dataset Dataset::head(int64_t n) const {
  if (n < 0) throw Error("Dataset::head: n must be >= 0, got " + std::to_string(n));
  const int64_t count = std::min(n, size());
  Dataset out;
  out.images = images.slice(0, 0, count).clone();
  out.labels = labels.slice(0, 0, count).clone();
  out.num_classes = num_classes;
  out.class_names = class_names;
  return out;
}

std::pair<Dataset, Dataset> hold_out(const Dataset& data, double fraction, uint64_t seed) {
  if (!(fraction > 0.0 && fraction < 1.0))
    throw Error("the validation fraction must lie in (0, 1), got " + std::to_string(fraction),
                "e.g. --val-fraction 0.1");
  const int64_t n = data.size();
  const auto held = static_cast<int64_t>(std::llround(fraction * double(n)));
  if (held < 1 || held >= n)
    throw Error("a validation fraction of " + std::to_string(fraction) + " of " + std::to_string(n) +
                    " training images leaves one part empty",
                "choose a fraction that keeps images on both sides");
  // A Fisher-Yates shuffle; its first `held` positions are held out.
  std::vector<int64_t> perm(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) perm[static_cast<size_t>(i)] = i;
  CounterStream rng(seed, StreamDomain::kValidation, 0, 0);
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(rng.integer(0, i))]);
  std::vector<int64_t> out_idx(perm.begin(), perm.begin() + held), in_idx(perm.begin() + held, perm.end());
  std::sort(out_idx.begin(), out_idx.end());
  std::sort(in_idx.begin(), in_idx.end());
  const auto take = [&](const std::vector<int64_t>& idx) {
    const auto index = torch::tensor(idx, torch::kLong);
    Dataset part;
    part.images = data.images.index_select(0, index).contiguous();
    part.labels = data.labels.index_select(0, index).contiguous();
    part.num_classes = data.num_classes;
    part.class_names = data.class_names;
    return part;
  };
  return {take(in_idx), take(out_idx)};
}

Normalization compute_normalization(const Dataset& data) {
  data.check("compute_normalization");
  const int64_t n = data.size(), c = data.channels();
  const int64_t plane = data.height() * data.width();
  if (n == 0) throw Error("cannot compute a normalisation over an empty dataset");

  // Histograms keep the sums exact integers, so the result does not depend on
  // summation order or floating-point accumulation.
  std::vector<std::array<uint64_t, kPixelValues>> hist(c);
  for (auto& h : hist) h.fill(0);
  const uint8_t* p = data.images.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t ch = 0; ch < c; ++ch) {
      auto& h = hist[ch];
      for (int64_t k = 0; k < plane; ++k) ++h[*p++];
    }
  }

  Normalization norm;
  const double count = static_cast<double>(n * plane);
  for (int64_t ch = 0; ch < c; ++ch) {
    uint64_t sum = 0;
    long double sum_sq = 0;  // up to 255^2 * count: beyond uint64 for huge sets
    for (int64_t v = 0; v < kPixelValues; ++v) {
      sum += hist[ch][v] * static_cast<uint64_t>(v);
      sum_sq += static_cast<long double>(hist[ch][v]) * static_cast<long double>(v * v);
    }
    const long double mean = static_cast<long double>(sum) / count;
    const long double var = std::max<long double>(sum_sq / count - mean * mean, 0.0L);
    double sd = static_cast<double>(std::sqrt(var)) / kPixelScale;
    // A constant channel carries no information; keep its output finite.
    if (sd < 1e-12) sd = 1.0;
    norm.mean.push_back(static_cast<double>(mean) / kPixelScale);
    norm.std.push_back(sd);
  }
  return norm;
}

torch::Tensor normalize(const torch::Tensor& images_u8, const Normalization& norm, torch::Device device) {
  if (!images_u8.defined() || images_u8.scalar_type() != torch::kByte || images_u8.dim() != 4) {
    throw Error("normalize: images must be uint8 [N, C, H, W]",
                "pass the raw images of a Dataset, before any conversion");
  }
  const int64_t c = images_u8.size(1);
  if (static_cast<int64_t>(norm.mean.size()) != c || static_cast<int64_t>(norm.std.size()) != c) {
    throw Error("normalize: images have " + std::to_string(c) + " channels but the normalisation has " +
                    std::to_string(norm.mean.size()) + " means and " + std::to_string(norm.std.size()) + " stds",
                "compute the normalisation from a dataset with the same channels");
  }
  // x' = x * scale + shift with scale = 1/(255 std), shift = -mean/std: one fused op.
  std::vector<float> scale(c), shift(c);
  for (int64_t ch = 0; ch < c; ++ch) {
    if (!(norm.std[ch] > 0.0) || !std::isfinite(norm.std[ch]) || !std::isfinite(norm.mean[ch])) {
      throw Error("normalize: channel " + std::to_string(ch) + " has std " + std::to_string(norm.std[ch]) +
                      " and mean " + std::to_string(norm.mean[ch]),
                  "stds must be positive and finite");
    }
    scale[ch] = static_cast<float>(1.0 / (kPixelScale * norm.std[ch]));
    shift[ch] = static_cast<float>(-norm.mean[ch] / norm.std[ch]);
  }
  // Move the uint8 pixels, not the 4x larger floats.
  const torch::Tensor x = images_u8.to(device).to(torch::kFloat);
  const auto opts = torch::TensorOptions().dtype(torch::kFloat);
  const torch::Tensor s = torch::tensor(scale, opts).view({1, c, 1, 1}).to(device);
  const torch::Tensor b = torch::tensor(shift, opts).view({1, c, 1, 1}).to(device);
  return torch::addcmul(b, x, s);
}

}  // namespace was::data
