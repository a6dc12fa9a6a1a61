#include "was/distributed/gradient_reducer.h"

#include <algorithm>
#include <chrono>

namespace was::distributed {

GradientReducer::GradientReducer(ProcessGroup& group, std::vector<torch::Tensor> parameters, int64_t bucket_bytes)
    : group_(group), bucket_bytes_(bucket_bytes) {
  for (const auto& p : parameters)
    if (p.requires_grad()) slots_.push_back({p, 0, 0, false});
  // Before the first backward, guess its order: the last registered first.
  std::vector<size_t> order(slots_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = order.size() - 1 - i;
  build_buckets(order);
  for (size_t i = 0; i < slots_.size(); ++i)
    hooks_.push_back(slots_[i].parameter.register_hook([this, i](const torch::Tensor& grad) { on_gradient(i, grad); }));
}

GradientReducer::~GradientReducer() {
  for (size_t i = 0; i < slots_.size(); ++i) slots_[i].parameter.remove_hook(hooks_[i]);
}

void GradientReducer::build_buckets(const std::vector<size_t>& order) {
  buckets_.clear();
  for (size_t i : order) {
    auto& s = slots_[i];
    const auto& p = s.parameter;
    const int64_t size = int64_t(p.element_size());
    const bool fits =
        !buckets_.empty() && buckets_.back().dtype == p.scalar_type() && buckets_.back().device == p.device() &&
        (bucket_bytes_ <= 0 || (buckets_.back().numel + p.numel()) * size <= std::max(bucket_bytes_, p.numel() * size));
    if (!fits) buckets_.push_back({p.scalar_type(), p.device(), 0, {}, {}, 0, {}});
    auto& b = buckets_.back();
    s.bucket = buckets_.size() - 1;
    s.offset = b.numel;
    b.numel += p.numel();
    b.slots.push_back(i);
  }
  for (auto& b : buckets_) b.flat = torch::zeros({b.numel}, torch::TensorOptions().dtype(b.dtype).device(b.device));
}

void GradientReducer::prepare() {
  for (auto& b : buckets_) b.waiting = b.slots.size();
  for (auto& s : slots_) s.ready = false;
  arrivals_.clear();
  next_bucket_ = 0;
  armed_ = true;
}

void GradientReducer::fill(size_t slot, const torch::Tensor& grad) {
  torch::NoGradGuard no_grad;
  auto& s = slots_[slot];
  auto& b = buckets_[s.bucket];
  auto dst = b.flat.slice(0, s.offset, s.offset + s.parameter.numel()).view(s.parameter.sizes());
  const auto& earlier = s.parameter.grad();  // what earlier backward passes of this step left
  if (grad.defined() && earlier.defined())
    torch::add_out(dst, grad, earlier);
  else if (grad.defined())
    dst.copy_(grad);
  else if (earlier.defined())
    dst.copy_(earlier);
  else
    dst.zero_();
  s.ready = true;
  --b.waiting;
}

void GradientReducer::on_gradient(size_t slot, const torch::Tensor& grad) {
  // Runs inside backward, on autograd's thread: the hooked tensor's gradient is
  // final here (autograd has summed every use of the parameter).
  if (!armed_ || slots_[slot].ready) return;
  arrivals_.push_back(slot);
  fill(slot, grad);
  start_ready_buckets();
}

void GradientReducer::start_ready_buckets() {
  while (next_bucket_ < buckets_.size() && buckets_[next_bucket_].waiting == 0) {
    auto& b = buckets_[next_bucket_++];
    b.collective = group_.allreduce_sum_async(b.flat);
  }
}

double GradientReducer::finish() {
  const auto start = std::chrono::steady_clock::now();
  started_in_backward_ = next_bucket_;
  // Parameters this backward did not reach (unused in the forward) still take
  // part, with what they hold, so every rank starts the same collectives.
  for (size_t i = 0; i < slots_.size(); ++i)
    if (!slots_[i].ready) fill(i, torch::Tensor());
  start_ready_buckets();
  armed_ = false;
  torch::NoGradGuard no_grad;
  for (auto& b : buckets_) {
    b.collective.wait();
    for (size_t i : b.slots) {
      auto& s = slots_[i];
      const auto sum = b.flat.slice(0, s.offset, s.offset + s.parameter.numel()).view(s.parameter.sizes());
      if (s.parameter.grad().defined())
        s.parameter.mutable_grad().copy_(sum);
      else
        s.parameter.mutable_grad() = sum.clone();
    }
  }
  if (!rebuilt_) {
    // As DDP does: after the first backward, buckets follow the order the
    // gradients really came in (rank 0's, so every rank agrees).
    rebuilt_ = true;
    std::vector<int64_t> order(arrivals_.begin(), arrivals_.end());
    for (size_t i = 0; i < slots_.size(); ++i)
      if (std::find(arrivals_.begin(), arrivals_.end(), i) == arrivals_.end()) order.push_back(int64_t(i));
    auto shared = torch::tensor(order, torch::kInt64);
    group_.broadcast({shared}, 0);
    std::vector<size_t> agreed(order.size());
    for (size_t i = 0; i < agreed.size(); ++i) agreed[i] = size_t(shared[int64_t(i)].item<int64_t>());
    build_buckets(agreed);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace was::distributed
