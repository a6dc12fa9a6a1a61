// Multiply-accumulate counting (WAS-SPEC §6).
//
// Counts what a forward pass really executes: a dispatcher observer sees every
// convolution and linear op with its actual weight and output, so the count
// works for any model and follows the weights a mode computes with.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

namespace was {

struct LayerMacs {
  std::string op;  ///< "conv" or "linear"
  std::vector<int64_t> weight_shape;
  std::vector<int64_t> output_shape;
  int64_t macs = 0;        ///< as counted (non-zero taps for sparse-counted weights)
  int64_t dense_macs = 0;  ///< every tap of the weight
  bool sparse_counted = false;
};

struct MacCount {
  int64_t conv = 0;
  int64_t linear = 0;
  std::vector<LayerMacs> layers;
  /// MACs per input image; FLOPs are twice this.
  int64_t total() const { return conv + linear; }
};

/// Runs `forward` once on a zero input of `input_shape` (batch 1 first) and
/// counts convolutions and linear layers. A convolution whose weight is one of
/// `sparse_weights` (the shadow weights of DOM) costs nnz(S) * H_out * W_out;
/// every other one numel(W) * H_out * W_out.
MacCount count_macs(const std::function<torch::Tensor(torch::Tensor)>& forward, const std::vector<int64_t>& input_shape,
                    torch::Device device = torch::kCPU, const std::vector<torch::Tensor>& sparse_weights = {});

}  // namespace was
