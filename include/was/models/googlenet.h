// GoogLeNet for 32x32 inputs (Szegedy et al., 2015, "Going Deeper with
// Convolutions"): Inception v1 blocks in the common CIFAR form, a 3x3 stem of
// 192 channels in place of the ImageNet stem (7x7/2 conv, max-pool, 1x1 and
// 3x3 convs, max-pool), so the inception blocks run at 32x32, 16x16 and 8x8.
// As in that form, BatchNorm follows every convolution (Inception v1 had
// none) and there are no auxiliary classifiers and no dropout.
#pragma once

#include "was/models/classifier.h"
#include "was/nn/layers.h"

namespace was::models {

struct GoogLeNetOptions {
  /// The "5x5" branch of every Inception block. false (default): one 5x5
  /// convolution, as in the paper's Figure 2(b). true: two stacked 3x3
  /// convolutions, as in the widespread kuangliu/pytorch-cifar form (an
  /// Inception v2 idea; more MACs here, see docs/MODELS.md).
  TORCH_ARG(bool, factorize_5x5) = false;
  /// Biased convolutions and LibTorch's (= PyTorch's) default initialisation,
  /// as the WAS authors' released googlenet.py has.
  TORCH_ARG(bool, released_code) = false;
};

/// Convolution (no bias unless asked), BatchNorm, ReLU (torchvision's BasicConv2d).
struct BasicConv2dImpl : torch::nn::Module {
  BasicConv2dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_size, bool bias = false);
  torch::Tensor forward(torch::Tensor x);

  was::CompactableConv2d conv{nullptr};
  was::FoldableBatchNorm2d bn{nullptr};
};
TORCH_MODULE(BasicConv2d);

/// Four parallel branches concatenated on channels: 1x1; 1x1 then 3x3; 1x1
/// then 5x5; 3x3 max-pool (stride 1) then 1x1. The arguments are the
/// columns of the paper's Table 1.
struct InceptionImpl : torch::nn::Module {
  InceptionImpl(int64_t in_channels, int64_t ch1x1, int64_t ch3x3_reduce, int64_t ch3x3, int64_t ch5x5_reduce,
                int64_t ch5x5, int64_t pool_proj, bool factorize_5x5 = false, bool bias = false);
  torch::Tensor forward(torch::Tensor x);
  /// ch1x1 + ch3x3 + ch5x5 + pool_proj.
  int64_t out_channels() const { return out_channels_; }

  torch::nn::Sequential branch1{nullptr}, branch2{nullptr}, branch3{nullptr}, branch4{nullptr};

 private:
  int64_t out_channels_;
};
TORCH_MODULE(Inception);

struct GoogLeNetImpl : ClassifierImpl {
  explicit GoogLeNetImpl(const ModelConfig& config, GoogLeNetOptions options = {});
  torch::Tensor forward(torch::Tensor x) override;
  std::vector<std::pair<std::string, std::string>> conv_batchnorm_pairs() const override {
    return conv_batchnorm_pairs_by_layout(*this);
  }

  BasicConv2d stem{nullptr};
  Inception a3{nullptr}, b3{nullptr};
  Inception a4{nullptr}, b4{nullptr}, c4{nullptr}, d4{nullptr}, e4{nullptr};
  Inception a5{nullptr}, b5{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(GoogLeNet);

}  // namespace was::models
