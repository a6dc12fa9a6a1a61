// A WAS network: one classifier, its plain weights, the shadow-weight
// controller and the BatchNorm statistics of each mode, switched together.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>

#include "was/batchnorm.h"
#include "was/models/classifier.h"
#include "was/nn/macs.h"
#include "was/shadow.h"

namespace was {

class Network {
 public:
  /// Builds `config`'s model and applies `policy` (none: a plain baseline).
  /// The weights are initialised from torch's generator, seeded by the caller.
  Network(models::ModelConfig config, Policy policy, uint64_t seed);

  const models::ModelConfig& config() const { return config_; }
  const Policy& policy() const { return shadow_.enabled() ? shadow_.policy() : policy_; }
  uint64_t seed() const { return seed_; }
  models::ClassifierImpl& module() { return *net_; }
  std::shared_ptr<models::ClassifierImpl> module_ptr() { return net_; }
  ShadowWeights& shadow() { return shadow_; }
  BatchNormBank& batchnorm() { return bn_; }
  const BatchNormBank& batchnorm() const { return bn_; }

  /// The forward; in channels-last mode the input is made NHWC first, so
  /// every convolution runs oneDNN's channels-last kernels.
  torch::Tensor forward(const torch::Tensor& x) {
    return net_->forward(channels_last_ ? x.contiguous(torch::MemoryFormat::ChannelsLast) : x);
  }
  /// A speed setting only: the same arithmetic in another summation order.
  void set_channels_last(bool on) { channels_last_ = on; }
  bool channels_last() const { return channels_last_; }

  /// Training mode with a fresh shadow-weight draw for the forward of `step`.
  /// `draw` > 0 selects another independent draw for the same step (K-draw
  /// training); draw 0 is the ordinary one.
  void begin_training_step(uint64_t step, int64_t draw = 0);
  /// Evaluation in `mode`: its weights and, when stored, its BatchNorm
  /// statistics (else the training-time ones). W is never copied or changed.
  void set_mode(const Mode& mode, bool use_mode_batchnorm = true);
  const Mode& mode() const { return mode_; }

  /// Re-estimates `mode`'s BatchNorm statistics from `num_batches` batches
  /// (`batch(i)` returns the images) and stores them in the bank.
  void reestimate_batchnorm(const Mode& mode, int64_t num_batches, const std::function<torch::Tensor(int64_t)>& batch);

  /// MACs per image in `mode` (DOM counts non-zero shadow weights only).
  MacCount macs(const Mode& mode);
  Sparsity sparsity(const Mode& mode) const;

  void to(torch::Device device);
  torch::Device device() const;

 private:
  models::ModelConfig config_;
  Policy policy_;
  uint64_t seed_;
  std::shared_ptr<models::ClassifierImpl> net_;
  ShadowWeights shadow_;
  BatchNormBank bn_;
  Mode mode_;
  bool channels_last_ = false;
};

/// The BatchNorm key of the statistics accumulated during training.
constexpr const char* kTrainingBatchNorm = "train";

}  // namespace was
