#include "was/data/loader.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "was/core/error.h"
#include "was/core/rng.h"

namespace was::data {

std::string Augmentation::to_string() const {
  if (!enabled()) return "none";
  std::string out;
  if (pad > 0) out = "crop(pad=" + std::to_string(pad) + ")";
  if (hflip) out += std::string(out.empty() ? "" : "+") + "hflip";
  return out;
}

AugmentParams draw_augmentation(const Augmentation& augmentation, uint64_t seed, int64_t epoch, int64_t index) {
  CounterStream rng(seed, StreamDomain::kAugment, static_cast<uint64_t>(epoch), static_cast<uint64_t>(index));
  AugmentParams p;
  p.dy = rng.integer(0, 2 * augmentation.pad);
  p.dx = rng.integer(0, 2 * augmentation.pad);
  p.flip = augmentation.hflip && (rng.next_u64() >> 63) != 0;
  return p;
}

torch::Tensor apply_augmentation(const torch::Tensor& images_u8, const std::vector<AugmentParams>& params,
                                 int64_t pad) {
  if (!images_u8.defined() || images_u8.scalar_type() != torch::kByte || images_u8.dim() != 4) {
    throw Error("apply_augmentation: images must be uint8 [B, C, H, W]");
  }
  const int64_t b = images_u8.size(0), c = images_u8.size(1), h = images_u8.size(2), w = images_u8.size(3);
  if (static_cast<int64_t>(params.size()) != b) {
    throw Error("apply_augmentation: " + std::to_string(params.size()) + " parameter sets for " + std::to_string(b) +
                " images");
  }
  if (pad < 0) throw Error("apply_augmentation: pad must not be negative, got " + std::to_string(pad));
  const auto cpu_long = torch::TensorOptions().dtype(torch::kLong);
  torch::Tensor dy = torch::empty({b, 1, 1}, cpu_long), dx = torch::empty({b, 1, 1}, cpu_long);
  torch::Tensor flip = torch::empty({b, 1, 1}, torch::kBool);
  for (int64_t i = 0; i < b; ++i) {
    const AugmentParams& p = params[static_cast<size_t>(i)];
    if (p.dy < 0 || p.dy > 2 * pad || p.dx < 0 || p.dx > 2 * pad) {
      throw Error("apply_augmentation: crop offset (" + std::to_string(p.dy) + ", " + std::to_string(p.dx) +
                  ") of image " + std::to_string(i) + " outside 0.." + std::to_string(2 * pad));
    }
    dy.data_ptr<int64_t>()[i] = p.dy;
    dx.data_ptr<int64_t>()[i] = p.dx;
    flip.data_ptr<bool>()[i] = p.flip;
  }
  // Output pixel (y, x) of image i reads padded pixel (dy + y, dx + x'), where
  // x' = w - 1 - x when mirrored: crop, then flip, as one flat gather.
  const torch::Tensor ys = torch::arange(h, cpu_long).view({1, h, 1});
  const torch::Tensor xs = torch::arange(w, cpu_long).view({1, 1, w});
  const torch::Tensor cols = dx + torch::where(flip, (w - 1) - xs, xs);  // [B, 1, W]
  const torch::Tensor index = ((dy + ys) * (w + 2 * pad) + cols)         // [B, H, W]
                                  .view({b, 1, h * w})
                                  .expand({b, c, h * w})
                                  .to(images_u8.device());
  const torch::Tensor padded =
      pad > 0 ? torch::constant_pad_nd(images_u8, {pad, pad, pad, pad}, 0) : images_u8;  // [B, C, H+2p, W+2p]
  return padded.reshape({b, c, -1}).gather(2, index).view({b, c, h, w});
}

BatchLoader::BatchLoader(const Dataset& data, Normalization norm, int64_t batch_size, bool shuffle, uint64_t seed,
                         bool drop_last, torch::Device device, Augmentation augmentation)
    : norm_(std::move(norm)),
      batch_size_(batch_size),
      shuffle_(shuffle),
      seed_(seed),
      drop_last_(drop_last),
      device_(device),
      augmentation_(augmentation) {
  if (batch_size < 1) {
    throw Error("batch size must be at least 1, got " + std::to_string(batch_size), "pass a positive --batch-size");
  }
  data.check("batch loader");
  if (static_cast<int64_t>(norm_.mean.size()) != data.channels() ||
      static_cast<int64_t>(norm_.std.size()) != data.channels()) {
    throw Error("batch loader: the normalisation has " + std::to_string(norm_.mean.size()) + " channels, the images " +
                    std::to_string(data.channels()),
                "use the normalisation of the same data set");
  }
  if (augmentation_.pad < 0 || augmentation_.pad >= std::min(data.height(), data.width())) {
    throw Error("batch loader: augmentation padding " + std::to_string(augmentation_.pad) + " must be in 0.." +
                    std::to_string(std::min(data.height(), data.width()) - 1) + " for " +
                    std::to_string(data.height()) + "x" + std::to_string(data.width()) + " images",
                "train without augmentation (--no-augment), or on larger images");
  }
  // The whole set lives on the device as uint8: a batch is then one gather and
  // one fused normalise there, with no host-to-device copy per step.
  images_ = data.images.to(device_);
  labels_ = data.labels.to(device_);
}

int64_t BatchLoader::size() const { return images_.size(0); }

int64_t BatchLoader::batches_per_epoch() const {
  const int64_t n = size();
  return drop_last_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
}

std::vector<int64_t> BatchLoader::order(int64_t epoch) const {
  if (epoch < 0) throw Error("batch loader: epoch must be >= 0, got " + std::to_string(epoch));
  std::vector<int64_t> perm(static_cast<size_t>(size()));
  std::iota(perm.begin(), perm.end(), int64_t{0});
  if (!shuffle_) return perm;
  CounterStream rng(seed_, StreamDomain::kShuffle, 0, static_cast<uint64_t>(epoch));
  for (int64_t i = size() - 1; i > 0; --i) {
    std::swap(perm[i], perm[rng.integer(0, i)]);
  }
  return perm;
}

std::shared_ptr<const BatchLoader::Order> BatchLoader::cached_order(int64_t epoch) const {
  std::lock_guard<std::mutex> lock(cache_->mutex);
  if (epoch != cache_->epoch || !cache_->order) {
    auto fresh = std::make_shared<Order>();
    fresh->indices = order(epoch);
    fresh->tensor = torch::tensor(fresh->indices, torch::kLong).to(device_);
    cache_->order = std::move(fresh);
    cache_->epoch = epoch;
  }
  return cache_->order;
}

Batch BatchLoader::batch(int64_t epoch, int64_t index) const {
  const int64_t count = batches_per_epoch();
  if (index < 0 || index >= count) {
    throw Error("batch loader: batch " + std::to_string(index) + " out of range, an epoch has " +
                std::to_string(count) + " batches");
  }
  const int64_t begin = index * batch_size_;
  const int64_t end = std::min(begin + batch_size_, size());
  const auto perm = cached_order(epoch);
  const torch::Tensor idx = perm->tensor.slice(0, begin, end);
  torch::Tensor images = images_.index_select(0, idx);
  if (augmentation_.enabled()) {
    // Drawn per sample, by its index in the data set: independent of the batch it lands in.
    std::vector<AugmentParams> params;
    params.reserve(static_cast<size_t>(end - begin));
    for (int64_t i = begin; i < end; ++i) {
      params.push_back(draw_augmentation(augmentation_, seed_, epoch, perm->indices[static_cast<size_t>(i)]));
    }
    images = apply_augmentation(images, params, augmentation_.pad);
  }
  Batch b;
  b.images = normalize(images, norm_, device_);
  b.labels = labels_.index_select(0, idx);
  return b;
}

}  // namespace was::data
