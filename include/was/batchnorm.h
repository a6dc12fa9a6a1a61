// BatchNorm statistics per inference mode (WAS-SPEC §5).
//
// PW and SW give activations of different scale (a crop that keeps 4 of 9 taps
// shrinks them), so one set of running statistics cannot serve both modes. The
// bank keeps one set per mode key ("train", "aom", "dom:SEED"), re-estimated
// after training as switchable BN in slimmable networks does.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace was {

class BatchNormBank {
 public:
  BatchNormBank() = default;
  /// Finds every BatchNorm1d/2d/3d of `model`, in module order.
  explicit BatchNormBank(torch::nn::Module& model);

  size_t num_layers() const { return layers_.size(); }
  bool has(const std::string& key) const { return entries_.count(key) > 0; }
  std::vector<std::string> keys() const;

  /// Snapshots the model's current running statistics under `key`.
  void store(const std::string& key);
  /// Forgets `key` (nothing happens if it is absent).
  void erase(const std::string& key) { entries_.erase(key); }
  /// Writes the statistics of `key` back into the model's buffers.
  void restore(const std::string& key);
  /// The stored buffers of `key` ([layer][running_mean, running_var, num_batches_tracked]).
  const std::vector<std::vector<torch::Tensor>>& entry(const std::string& key) const;
  std::vector<std::vector<torch::Tensor>>& mutable_entry(const std::string& key);

  /// Re-estimates the running statistics from scratch as the exact average over
  /// the batches `forward_batch(i)` runs (i < num_batches); the rest of the
  /// model stays in eval mode, nothing else changes.
  void reestimate(torch::nn::Module& model, int64_t num_batches, const std::function<void(int64_t)>& forward_batch);

  void save(torch::serialize::OutputArchive& archive) const;
  /// Throws was::Error if the archive's layers do not match this model's.
  void load(torch::serialize::InputArchive& archive, const std::vector<std::string>& keys);

 private:
  std::vector<torch::nn::Module*> layers_;
  std::map<std::string, std::vector<std::vector<torch::Tensor>>> entries_;
};

}  // namespace was
