// Inference exports: one mode of a trained network as a self-contained file,
// and the plain weights as a state dict for Python PyTorch.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "was/core/speed_cache.h"
#include "was/data/dataset.h"
#include "was/io/checkpoint.h"
#include "was/network.h"

namespace was {

/// Bumped whenever the export layout changes; other versions are refused.
constexpr int kExportVersion = 1;

struct ExportOptions {
  Mode mode;
  bool fold_batchnorm = true;       ///< fold each mode's BN into the convolution before it, where exact
  bool replace_checkpoint = false;  ///< true (--force): `path` may be a training checkpoint, which is lost
};

/// Writes `mode` of `network` (its weights: W or the DOM shadow weights; its
/// BatchNorm statistics, folded where the model declares conv-BN pairs), the
/// model config and the normalisation to `path`, atomically.
void export_inference(const std::string& path, Network& network, const RunRecord& state, const ExportOptions& options);

/// A loaded export, ready to predict.
struct InferenceModel {
  models::ModelConfig model;
  Mode mode;
  std::string policy;  ///< the training policy (information only)
  data::Normalization normalization;
  std::vector<std::string> class_names;
  bool folded = false;
  std::shared_ptr<models::ClassifierImpl> net;
  std::vector<std::string> compacted;  ///< "layer: 3x3 -> 2x2" for each compacted convolution
  std::vector<std::string> dense;      ///< transformed-looking layers left dense, and why
  bool channels_last = false;

  /// Runs NHWC from now on: convolution weights and the normalised inputs in
  /// channels-last layout, so oneDNN uses its channels-last kernels (much
  /// faster for depthwise convolutions: MobileNetV2 1.4x here). Same outputs
  /// up to summation order.
  void use_channels_last();
  /// Logits for uint8 images [N, C, H, W] (normalised here).
  torch::Tensor predict(const torch::Tensor& images_u8);
};

/// Reads an export; `compact` runs sparse DOM layers as smaller dense
/// convolutions. Throws was::Error for a missing, truncated or foreign file,
/// another version, or a mode other than `expect_mode` (when given).
InferenceModel load_inference(const std::string& path, torch::Device device = torch::kCPU, bool compact = true,
                              const std::optional<Mode>& expect_mode = std::nullopt);

/// An export loaded in the memory format that runs it fastest here at
/// `batch` images: NCHW or channels-last, as measured (a few forwards of each,
/// alternating) or as `cache` remembers for this processor, model, mode,
/// batch and threads. The outputs are the same up to summation order.
struct ChosenInference {
  InferenceModel model;
  SpeedChoice choice;
};
ChosenInference load_inference_fastest(const std::string& path, torch::Device device, bool compact,
                                       const std::optional<Mode>& expect_mode, int64_t batch, int threads,
                                       const SpeedCache* cache, const std::function<void(const std::string&)>& warn);

/// What export_inference then load_inference give, without a file: `mode`
/// of `network` as a separate inference model (its own copies of the
/// weights), compacted when `compact`.
InferenceModel make_inference_model(Network& network, const RunRecord& state, const ExportOptions& options,
                                    torch::Device device = torch::kCPU, bool compact = true);

/// Compacts every CompactableConv2d of `net` whose weights allow it; returns
/// what it did per layer.
std::vector<std::string> compact_convolutions(models::ClassifierImpl& net, std::vector<std::string>* dense = nullptr);

/// Writes W and the BatchNorm statistics of `bn_mode` (default AOM) as a
/// state dict Python opens with torch.load: keys as named_parameters /
/// named_buffers ("layer1.0.conv1.weight", "bn1.running_mean", ...).
/// Refuses to replace a training checkpoint at `path` unless `replace_checkpoint`.
void write_pytorch_state_dict(const std::string& path, Network& network, const Mode& bn_mode = Mode::aom(),
                              bool replace_checkpoint = false);
/// Reads such a file back (for tests and tools).
std::vector<std::pair<std::string, torch::Tensor>> read_pytorch_state_dict(const std::string& path);

}  // namespace was
