#include "was/nn/layers.h"

#include <ostream>

namespace was {

torch::Tensor DeferredWeightConv2dImpl::forward(const torch::Tensor& input) {
  return _conv_forward(input, is_training() ? training_weight() : weight);
}

torch::Tensor CompactableConv2dImpl::forward(const torch::Tensor& input) {
  if (!is_training()) return plan_ ? run_compact(*plan_, *this, input) : _conv_forward(input, weight);
  return _conv_forward(input, training_weight());
}

void CompactableConv2dImpl::pretty_print(std::ostream& stream) const {
  stream << "was::CompactableConv2d(" << options.in_channels() << ", " << options.out_channels()
         << ", kernel_size=" << options.kernel_size() << ", stride=" << options.stride()
         << ", groups=" << options.groups() << (plan_ ? ", compact " + plan_->describe() : "") << ")";
}

FoldableBatchNorm2dImpl::FoldableBatchNorm2dImpl(const torch::nn::BatchNormOptions& options) : options(options) {
  reset();
}

void FoldableBatchNorm2dImpl::reset() {
  const int64_t n = options.num_features();
  if (options.affine()) {
    weight = register_parameter("weight", torch::ones({n}));
    bias = register_parameter("bias", torch::zeros({n}));
  }
  if (options.track_running_stats()) {
    running_mean = register_buffer("running_mean", torch::zeros({n}));
    running_var = register_buffer("running_var", torch::ones({n}));
    num_batches_tracked = register_buffer("num_batches_tracked", torch::tensor(0, torch::kLong));
  }
}

// torch::nn::BatchNorm2d's forward, step for step (momentum None: cumulative average).
torch::Tensor FoldableBatchNorm2dImpl::forward(const torch::Tensor& input) {
  if (folded_) return input;
  TORCH_CHECK(input.dim() == 4, "FoldableBatchNorm2d: expected 4-D input, got ", input.dim(), "-D");
  double factor = options.momentum().value_or(0.0);
  if (is_training() && options.track_running_stats() && num_batches_tracked.defined()) {
    num_batches_tracked += 1;
    factor = options.momentum() ? *options.momentum() : 1.0 / num_batches_tracked.item<double>();
  }
  return torch::batch_norm(input, weight, bias, running_mean, running_var,
                           is_training() || !options.track_running_stats(), factor, options.eps(),
                           at::globalContext().userEnabledCuDNN());
}

void FoldableBatchNorm2dImpl::pretty_print(std::ostream& stream) const {
  stream << "was::FoldableBatchNorm2d(" << options.num_features() << (folded_ ? ", folded" : "") << ")";
}

}  // namespace was
