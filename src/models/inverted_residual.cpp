#include "was/models/inverted_residual.h"

namespace was::models {

InvertedResidualImpl::InvertedResidualImpl(const InvertedResidualOptions& o)
    : use_residual(o.stride() == 1 && o.in_channels() == o.out_channels()), drop_connect(o.drop_connect()) {
  TORCH_CHECK(o.stride() == 1 || o.stride() == 2, "InvertedResidual: stride must be 1 or 2, got ", o.stride());
  TORCH_CHECK(o.kernel_size() % 2 == 1, "InvertedResidual: the depthwise kernel must be odd, got ", o.kernel_size());
  const auto conv = [&o](int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups) {
    return was::CompactableConv2d(
        torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).groups(groups).bias(o.bias()));
  };
  const auto norm = [&o](int64_t channels) {
    return was::FoldableBatchNorm2d(
        torch::nn::BatchNormOptions(channels).eps(o.batchnorm().eps()).momentum(o.batchnorm().momentum()));
  };
  const int64_t hidden = o.in_channels() * o.expand_ratio();
  if (o.expand_ratio() != 1 || o.always_expand()) {
    expand = register_module("expand", conv(o.in_channels(), hidden, 1, 1, 1));
    expand_bn = register_module("expand_bn", norm(hidden));
  }
  depthwise = register_module("depthwise", conv(hidden, hidden, o.kernel_size(), o.stride(), /*groups=*/hidden));
  depthwise_bn = register_module("depthwise_bn", norm(hidden));
  project = register_module("project", conv(hidden, o.out_channels(), 1, 1, 1));
  project_bn = register_module("project_bn", norm(o.out_channels()));
}

torch::Tensor InvertedResidualImpl::forward(torch::Tensor x) {
  auto out = expand.is_empty() ? x : relu6_bf16_safe(expand_bn(expand(x)));  // N x t*in x H x W
  out = relu6_bf16_safe(depthwise_bn(depthwise(out)));                       // N x t*in x H/s x W/s
  out = project_bn(project(out));  // N x out x H/s x W/s; the linear bottleneck
  if (!use_residual) return out;
  if (drop_connect > 0.0 && is_training()) {
    // Per sample: keep with 1 - rate and rescale (the released code's drop_connect).
    const double keep = 1.0 - drop_connect;
    const auto mask = torch::floor(keep + torch::rand({out.size(0), 1, 1, 1}, out.options()));
    out = out / keep * mask;
  }
  return x + out;
}

}  // namespace was::models
