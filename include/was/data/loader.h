// A shuffling batch loader over an in-memory Dataset.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "was/data/dataset.h"

namespace was::data {

/// One batch: float32 normalised images [B, C, H, W] and int64 labels [B],
/// both on the loader's device.
struct Batch {
  torch::Tensor images;
  torch::Tensor labels;
};

/// Serves batches of a Dataset in a per-epoch order that depends only on
/// (seed, epoch), so any batch of any epoch can be produced on demand and a
/// resumed run sees exactly the batches an uninterrupted one would have seen.
class BatchLoader {
 public:
  /// Throws was::Error if batch_size < 1, the data are inconsistent, or `norm`
  /// does not match the channels. The data are copied to `device` once.
  BatchLoader(const Dataset& data, Normalization norm, int64_t batch_size, bool shuffle,
              uint64_t seed, bool drop_last = false, torch::Device device = torch::kCPU);

  /// ceil(size / batch_size), or floor when drop_last.
  int64_t batches_per_epoch() const;
  /// Number of samples.
  int64_t size() const;
  int64_t batch_size() const { return batch_size_; }
  const Normalization& normalization() const { return norm_; }
  torch::Device device() const { return device_; }

  /// The sample order of `epoch`: a Fisher-Yates permutation drawn from
  /// was::CounterStream(seed, kShuffle, 0, epoch); the identity when !shuffle.
  std::vector<int64_t> order(int64_t epoch) const;
  /// Batch `index` of `epoch` (the last one may be smaller unless drop_last).
  Batch batch(int64_t epoch, int64_t index) const;

 private:
  /// order(epoch) as an int64 tensor on the device, cached for the last epoch asked.
  torch::Tensor order_tensor(int64_t epoch) const;

  torch::Tensor images_;  // uint8 [N, C, H, W] on device_
  torch::Tensor labels_;  // int64 [N] on device_
  Normalization norm_;
  int64_t batch_size_;
  bool shuffle_;
  uint64_t seed_;
  bool drop_last_;
  torch::Device device_;

  // Shared so the loader stays copyable; copies have the same seed, so the
  // cached order is valid for all of them.
  struct OrderCache {
    std::mutex mutex;
    int64_t epoch = -1;
    torch::Tensor order;
  };
  std::shared_ptr<OrderCache> cache_ = std::make_shared<OrderCache>();
};

}  // namespace was::data
