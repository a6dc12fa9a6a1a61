// Gradient all-reduce overlapped with the backward pass, as PyTorch's DDP
// does it: parameters are packed into buckets in reverse registration order
// (a guess at the order backward produces their gradients, replaced after the
// first backward by the order observed); a hook on each parameter copies its
// gradient into its bucket as soon as autograd has it, and a full bucket
// starts its all-reduce at once, while backward goes on.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "was/distributed/process_group.h"

namespace was::distributed {

/// DDP's default bucket_cap_mb is 25; smaller buckets start earlier, which
/// matters more on a CPU whose backward is slow.
constexpr int64_t kDefaultBucketBytes = int64_t{8} << 20;

class GradientReducer {
 public:
  /// `bucket_bytes` 0: one bucket, all-reduced after backward (no overlap).
  GradientReducer(ProcessGroup& group, std::vector<torch::Tensor> parameters,
                  int64_t bucket_bytes = kDefaultBucketBytes);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  /// The next backward is the last of this step: reduce its gradients (added
  /// to what earlier backward passes of the step left in .grad) as they come.
  void prepare();
  /// After that backward: completes the all-reduces and writes the sums into
  /// every parameter's .grad. Returns the seconds spent waiting here (the
  /// communication backward did not hide).
  double finish();

  size_t bucket_count() const { return buckets_.size(); }
  /// Buckets the last backward started itself, before finish() (the overlap).
  size_t buckets_started_in_backward() const { return started_in_backward_; }

 private:
  struct Slot {
    torch::Tensor parameter;
    size_t bucket = 0;
    int64_t offset = 0;
    bool ready = false;
  };
  struct Bucket {
    c10::ScalarType dtype;
    torch::Device device;
    int64_t numel = 0;
    std::vector<size_t> slots;
    torch::Tensor flat;
    size_t waiting = 0;
    PendingCollective collective;
  };

  /// Buckets of at most bucket_bytes_, filled with the slots in `order`.
  void build_buckets(const std::vector<size_t>& order);
  void on_gradient(size_t slot, const torch::Tensor& grad);
  void fill(size_t slot, const torch::Tensor& grad);
  void start_ready_buckets();

  ProcessGroup& group_;
  int64_t bucket_bytes_;
  std::vector<Slot> slots_;  ///< one per parameter that requires a gradient, in registration order
  std::vector<Bucket> buckets_;
  std::vector<unsigned> hooks_;
  size_t next_bucket_ = 0;  ///< buckets start strictly in order, the same on every rank
  size_t started_in_backward_ = 0;
  std::vector<size_t> arrivals_;  ///< slots in the order this backward delivered them
  bool armed_ = false;
  bool rebuilt_ = false;
};

}  // namespace was::distributed
