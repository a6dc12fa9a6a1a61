// A shuffling batch loader over an in-memory Dataset.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "was/data/dataset.h"

namespace was::data {

/// Training-time augmentation of a loader's batches, applied to the uint8
/// images before normalisation: a random crop of the image zero-padded by
/// `pad` pixels a side (offsets -pad..pad in each direction), then a
/// horizontal flip with probability 1/2. The common CIFAR recipe is
/// standard(): pad 4, flip.
struct Augmentation {
  int64_t pad = 0;     ///< 0: no crop
  bool hflip = false;  ///< mirror left-right with probability 1/2

  bool enabled() const { return pad > 0 || hflip; }
  /// Random crop with 4-pixel zero padding and horizontal flip.
  static Augmentation standard() { return {4, true}; }
  /// "none", or e.g. "crop(pad=4)+hflip", for logs.
  std::string to_string() const;
};

/// One sample's augmentation: the top-left corner (dy, dx) of the crop in the
/// padded image, each in 0..2*pad, and whether it is mirrored.
struct AugmentParams {
  int64_t dy = 0, dx = 0;
  bool flip = false;
};

/// The draw of sample `index` (its position in the data set) in `epoch`:
/// dy, dx, then the flip, from was::CounterStream(seed, kAugment, epoch,
/// index). It depends on nothing else, so any batch can be rebuilt exactly.
AugmentParams draw_augmentation(const Augmentation& augmentation, uint64_t seed, int64_t epoch, int64_t index);

/// Applies one AugmentParams per image to uint8 [B, C, H, W]: zero-pads by
/// `pad`, crops H x W at (dy, dx), mirrors where `flip`. One gather for the
/// whole batch; the result is uint8 [B, C, H, W] on the images' device.
torch::Tensor apply_augmentation(const torch::Tensor& images_u8, const std::vector<AugmentParams>& params, int64_t pad);

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
  /// Throws was::Error if batch_size < 1, the data are inconsistent, `norm`
  /// does not match the channels, or `augmentation.pad` is negative or not
  /// smaller than the images. The data are copied to `device` once.
  /// `augmentation` (training loaders only) draws per (seed, epoch, sample).
  BatchLoader(const Dataset& data, Normalization norm, int64_t batch_size, bool shuffle, uint64_t seed,
              bool drop_last = false, torch::Device device = torch::kCPU, Augmentation augmentation = {});

  /// ceil(size / batch_size), or floor when drop_last.
  int64_t batches_per_epoch() const;
  /// Number of samples.
  int64_t size() const;
  int64_t batch_size() const { return batch_size_; }
  const Normalization& normalization() const { return norm_; }
  torch::Device device() const { return device_; }
  const Augmentation& augmentation() const { return augmentation_; }

  /// The sample order of `epoch`: a Fisher-Yates permutation drawn from
  /// was::CounterStream(seed, kShuffle, 0, epoch); the identity when !shuffle.
  std::vector<int64_t> order(int64_t epoch) const;
  /// Batch `index` of `epoch` (the last one may be smaller unless drop_last),
  /// augmented if the loader was given an Augmentation.
  Batch batch(int64_t epoch, int64_t index) const;

 private:
  struct Order {
    std::vector<int64_t> indices;  // order(epoch)
    torch::Tensor tensor;          // the same as int64 on the device
  };
  /// order(epoch), cached for the last epoch asked.
  std::shared_ptr<const Order> cached_order(int64_t epoch) const;

  torch::Tensor images_;  // uint8 [N, C, H, W] on device_
  torch::Tensor labels_;  // int64 [N] on device_
  Normalization norm_;
  int64_t batch_size_;
  bool shuffle_;
  uint64_t seed_;
  bool drop_last_;
  torch::Device device_;
  Augmentation augmentation_;

  // Shared so the loader stays copyable; copies have the same seed, so the
  // cached order is valid for all of them.
  struct OrderCache {
    std::mutex mutex;
    int64_t epoch = -1;
    std::shared_ptr<const Order> order;
  };
  std::shared_ptr<OrderCache> cache_ = std::make_shared<OrderCache>();
};

}  // namespace was::data
