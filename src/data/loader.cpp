#include "was/data/loader.h"

#include <numeric>
#include <utility>

#include "was/error.h"
#include "was/rng.h"

namespace was::data {

BatchLoader::BatchLoader(const Dataset& data, Normalization norm, int64_t batch_size, bool shuffle,
                         uint64_t seed, bool drop_last, torch::Device device)
    : norm_(std::move(norm)),
      batch_size_(batch_size),
      shuffle_(shuffle),
      seed_(seed),
      drop_last_(drop_last),
      device_(device) {
  if (batch_size < 1) {
    throw Error("batch size must be at least 1, got " + std::to_string(batch_size),
                "pass a positive --batch-size");
  }
  data.check("batch loader");
  if (static_cast<int64_t>(norm_.mean.size()) != data.channels() ||
      static_cast<int64_t>(norm_.std.size()) != data.channels()) {
    throw Error("batch loader: the normalisation has " + std::to_string(norm_.mean.size()) +
                    " channels, the images " + std::to_string(data.channels()),
                "use the normalisation of the same data set");
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

torch::Tensor BatchLoader::order_tensor(int64_t epoch) const {
  std::lock_guard<std::mutex> lock(cache_->mutex);
  if (epoch != cache_->epoch || !cache_->order.defined()) {
    const std::vector<int64_t> perm = order(epoch);
    cache_->order = torch::tensor(perm, torch::kLong).to(device_);
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
  const torch::Tensor idx = order_tensor(epoch).slice(0, begin, end);
  Batch b;
  b.images = normalize(images_.index_select(0, idx), norm_, device_);
  b.labels = labels_.index_select(0, idx);
  return b;
}

}  // namespace was::data
