#include "was/batchnorm.h"

#include "was/core/error.h"
#include "was/nn/layers.h"

namespace was {
namespace {

constexpr const char* kBufferNames[] = {"running_mean", "running_var", "num_batches_tracked"};

template <typename Impl>
bool set_momentum(torch::nn::Module* m, c10::optional<double> momentum, c10::optional<double>* old) {
  auto* bn = dynamic_cast<Impl*>(m);
  if (bn == nullptr) return false;
  if (old) *old = bn->options.momentum();
  bn->options.momentum(momentum);
  return true;
}

// Sets momentum on any BatchNorm kind; returns the previous value.
c10::optional<double> swap_momentum(torch::nn::Module* m, c10::optional<double> momentum) {
  c10::optional<double> old;
  set_momentum<torch::nn::BatchNorm1dImpl>(m, momentum, &old) ||
      set_momentum<torch::nn::BatchNorm2dImpl>(m, momentum, &old) ||
      set_momentum<torch::nn::BatchNorm3dImpl>(m, momentum, &old) ||
      set_momentum<FoldableBatchNorm2dImpl>(m, momentum, &old);
  return old;
}

bool is_batchnorm(torch::nn::Module* m) {
  return dynamic_cast<torch::nn::BatchNorm1dImpl*>(m) || dynamic_cast<torch::nn::BatchNorm2dImpl*>(m) ||
         dynamic_cast<torch::nn::BatchNorm3dImpl*>(m) || dynamic_cast<FoldableBatchNorm2dImpl*>(m);
}

// A handle to the module's buffer (by value: named_buffers() returns a
// temporary dict, and a reference into it would dangle).
torch::Tensor buffer(torch::nn::Module* m, const char* name) {
  const auto buffers = m->named_buffers(false);
  const auto* t = buffers.find(name);
  TORCH_CHECK(t != nullptr, "BatchNorm without buffer ", name, " (track_running_stats off?)");
  return *t;
}

std::string archive_key(const std::string& key) {
  std::string out = key;
  for (char& c : out)
    if (c == ':' || c == '.' || c == '/') c = '_';
  return out;
}

}  // namespace

BatchNormBank::BatchNormBank(torch::nn::Module& model) {
  for (auto& m : model.modules(/*include_self=*/false))
    if (is_batchnorm(m.get()) && m->named_buffers(false).find("running_mean") != nullptr) layers_.push_back(m.get());
}

std::vector<std::string> BatchNormBank::keys() const {
  std::vector<std::string> k;
  for (const auto& [key, _] : entries_) k.push_back(key);
  return k;
}

void BatchNormBank::store(const std::string& key) {
  torch::NoGradGuard no_grad;
  std::vector<std::vector<torch::Tensor>> snapshot;
  for (auto* m : layers_) {
    std::vector<torch::Tensor> bufs;
    for (const char* name : kBufferNames) bufs.push_back(buffer(m, name).detach().clone());
    snapshot.push_back(std::move(bufs));
  }
  entries_[key] = std::move(snapshot);
}

void BatchNormBank::restore(const std::string& key) {
  torch::NoGradGuard no_grad;
  const auto& snapshot = entry(key);
  for (size_t i = 0; i < layers_.size(); ++i)
    for (size_t b = 0; b < 3; ++b) buffer(layers_[i], kBufferNames[b]).copy_(snapshot[i][b]);
}

const std::vector<std::vector<torch::Tensor>>& BatchNormBank::entry(const std::string& key) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) throw Error("no BatchNorm statistics stored for mode '" + key + "'");
  return it->second;
}

std::vector<std::vector<torch::Tensor>>& BatchNormBank::mutable_entry(const std::string& key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) throw Error("no BatchNorm statistics stored for mode '" + key + "'");
  return it->second;
}

void BatchNormBank::reestimate(torch::nn::Module& model, int64_t num_batches,
                               const std::function<void(int64_t)>& forward_batch) {
  torch::NoGradGuard no_grad;
  model.eval();
  std::vector<c10::optional<double>> saved;
  for (auto* m : layers_) {
    // momentum None: a cumulative average, i.e. the exact mean over batches.
    saved.push_back(swap_momentum(m, c10::nullopt));
    buffer(m, "running_mean").zero_();
    buffer(m, "running_var").fill_(1);
    buffer(m, "num_batches_tracked").zero_();
    m->train();
  }
  try {
    for (int64_t i = 0; i < num_batches; ++i) forward_batch(i);
  } catch (...) {
    for (size_t i = 0; i < layers_.size(); ++i) swap_momentum(layers_[i], saved[i]);
    model.eval();
    throw;
  }
  for (size_t i = 0; i < layers_.size(); ++i) swap_momentum(layers_[i], saved[i]);
  model.eval();
}

void BatchNormBank::save(torch::serialize::OutputArchive& archive) const {
  for (const auto& [key, snapshot] : entries_) {
    torch::serialize::OutputArchive sub;
    for (size_t i = 0; i < snapshot.size(); ++i)
      for (size_t b = 0; b < 3; ++b) sub.write(std::to_string(i) + "_" + kBufferNames[b], snapshot[i][b]);
    archive.write(archive_key(key), sub);
  }
}

void BatchNormBank::load(torch::serialize::InputArchive& archive, const std::vector<std::string>& keys) {
  entries_.clear();
  for (const auto& key : keys) {
    torch::serialize::InputArchive sub;
    if (!archive.try_read(archive_key(key), sub))
      throw Error("checkpoint lacks the BatchNorm statistics of mode '" + key + "'");
    std::vector<std::vector<torch::Tensor>> snapshot;
    for (size_t i = 0; i < layers_.size(); ++i) {
      std::vector<torch::Tensor> bufs;
      for (const char* name : kBufferNames) {
        torch::Tensor t;
        if (!sub.try_read(std::to_string(i) + "_" + name, t))
          throw Error("checkpoint's BatchNorm statistics of mode '" + key + "' do not match the model (layer " +
                      std::to_string(i) + ")");
        if (!t.sizes().equals(buffer(layers_[i], name).sizes()))
          throw Error("checkpoint's BatchNorm statistics of mode '" + key + "' have the wrong shape at layer " +
                      std::to_string(i));
        bufs.push_back(t);
      }
      snapshot.push_back(std::move(bufs));
    }
    torch::Tensor extra;
    if (sub.try_read(std::to_string(layers_.size()) + "_running_mean", extra))
      throw Error("checkpoint's BatchNorm statistics of mode '" + key + "' have more layers than the model");
    entries_[key] = std::move(snapshot);
  }
}

}  // namespace was
