// Shadow weights: the WAS convolution, its two inference modes, and the
// controller that applies WAS to the convolutions of any LibTorch model.
//
// A transformed convolution keeps its plain weights W as its registered
// parameter "weight" (so state dicts look like PyTorch's). What the forward pass
// uses is chosen per call: a fresh draw S = T(W) in training (autograd carries
// A^T back to W), W in AOM, a fixed seeded draw in DOM (WAS-SPEC §4-5).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "was/core/rng.h"
#include "was/nn/layers.h"
#include "was/transforms.h"

namespace was {

/// The inference mode: AOM (plain weights) or DOM with a DOM seed. A DOM
/// may draw from an inference policy of its own (say a fixed smaller crop)
/// instead of the training policy: `policy` is then its canonical text.
struct Mode {
  enum class Kind { kAom, kDom };
  Kind kind = Kind::kAom;
  int64_t dom_seed = 0;
  std::string policy;  ///< DOM only: "" draws from the training policy

  static Mode aom() { return {}; }
  /// What use_draw leaves: a DOM drawn afresh, named by no DOM seed.
  static Mode stochastic_dom() { return {Kind::kDom, -1, {}}; }
  static Mode dom(int64_t seed = 0) { return {Kind::kDom, seed, {}}; }
  /// A DOM drawn from `policy` (canonicalised; throws was::Error if invalid).
  static Mode dom(int64_t seed, const Policy& policy);
  bool is_dom() const { return kind == Kind::kDom; }
  /// "aom", "dom:SEED" or "dom:SEED/POLICY"; the key of this mode's BatchNorm statistics.
  std::string key() const;
  /// Reads what key() writes, and "dom" (seed 0).
  static Mode parse(const std::string& text);
  bool operator==(const Mode& o) const {
    return kind == o.kind && (kind == Kind::kAom || (dom_seed == o.dom_seed && policy == o.policy));
  }
};

/// One transformed convolution: how it draws and what it computes. It does not
/// own the convolution (the model does).
class ShadowLayer {
 public:
  ShadowLayer(std::string name, int64_t index, torch::nn::Conv2dImpl* conv, Policy policy);
  /// A layer of a convolution outside LibTorch's module tree (a Python
  /// torch.nn.Conv2d): W and, in the paper family, its gain are given; the
  /// caller runs the convolution with training_weight / weight_for, and
  /// train_with_draw / infer_with throw.
  ShadowLayer(std::string name, int64_t index, torch::Tensor plain_weight, torch::Tensor gain, Policy policy);

  const std::string& name() const { return name_; }
  int64_t index() const { return index_; }
  const Policy& policy() const { return policy_; }
  /// The convolution; throws was::Error for a layer built from a tensor.
  torch::nn::Conv2dImpl& conv() const;
  /// W: the registered parameter, whatever the forward pass currently uses.
  const torch::Tensor& plain_weight() const { return plain_; }
  /// The paper family's learnable gain g (a 0-d parameter "shadow_gain" of
  /// the convolution, initialised U[0, 1) as the released code does);
  /// undefined otherwise. The shadow path computes with g * T(W), AOM with W.
  const torch::Tensor& gain() const { return gain_; }

  /// θ for this layer from the stream (seed, domain, layer index, step): one
  /// entry under `layer` granularity, one per output filter under `filter`.
  std::vector<TransformParams> draw(uint64_t seed, StreamDomain domain, uint64_t step) const;
  /// S = T_θ(W), differentiable in W.
  torch::Tensor shadow_weight(const std::vector<TransformParams>& params) const;
  /// The fresh training draw of `step`.
  torch::Tensor training_weight(uint64_t run_seed, uint64_t step) const;
  /// The DOM weights of `dom_seed` (no autograd), computed from the current W,
  /// drawn from `policy` when given (else the layer's training policy).
  torch::Tensor dom_weight(int64_t dom_seed, const Policy* policy = nullptr) const;
  /// What `mode` computes with: W for AOM, the DOM draw otherwise.
  torch::Tensor weight_for(const Mode& mode) const;

  /// The one way the convolution gets its shadow weights. Training: its next
  /// forward computes with the fresh draw of `step`, drawn when it runs on a
  /// DeferredWeightConv2d (the zoo's convolutions, WasConv2d), drawn now on
  /// any other Conv2d.
  void train_with_draw(uint64_t run_seed, uint64_t step) const;
  /// Inference: the convolution computes with `weight` (W, a DOM draw, one
  /// stochastic draw) until the next call.
  void infer_with(torch::Tensor weight) const;

 private:
  std::string name_;
  int64_t index_;
  torch::nn::Conv2dImpl* conv_;
  DeferredWeightConv2dImpl* deferred_;  ///< conv_ when it can draw as it runs, else null
  torch::Tensor plain_;
  torch::Tensor gain_;
  Policy policy_;
};

/// The name of the gain parameter on a transformed convolution (paper family).
constexpr const char* kShadowGainName = "shadow_gain";

/// Drop-in for torch::nn::Conv2d (same options) that is a WAS convolution on
/// its own: each training forward draws fresh shadow weights, evaluation runs
/// AOM or DOM. A model built from it needs no controller; under one
/// (ShadowWeights) it takes its weights as every other transformed
/// convolution does, and its own mode and step stay unused.
class WasConv2dImpl : public DeferredWeightConv2dImpl {
 public:
  explicit WasConv2dImpl(torch::nn::Conv2dOptions options, Policy policy = Policy::preset("CT"), uint64_t seed = 0,
                         int64_t layer_index = 0);
  torch::Tensor forward(const torch::Tensor& input);

  /// Selects AOM or DOM for evaluation. The DOM weights are computed here,
  /// once: call it again after changing W outside of training.
  void set_mode(const Mode& mode);
  const Mode& mode() const { return mode_; }
  /// Leaving evaluation drops the DOM weights (W is about to change).
  void train(bool on = true) override;
  /// What an evaluation forward computes with now.
  torch::Tensor eval_weight();
  /// The stream counter of the next training forward (one per forward).
  void set_step(uint64_t step) { step_ = step; }
  uint64_t step() const { return step_; }
  /// Hands the layer to a controller: its draws are re-keyed by the
  /// controller's seed and layer index, and the controller supplies its weights.
  void attach_to_controller(uint64_t seed, int64_t layer_index);
  const ShadowLayer& shadow() const { return *shadow_; }

 private:
  std::unique_ptr<ShadowLayer> shadow_;
  bool controlled_ = false;
  uint64_t seed_;
  uint64_t step_ = 0;
  Mode mode_;
  torch::Tensor dom_weight_;  // set by set_mode(DOM), dropped by train()
};
TORCH_MODULE(WasConv2d);

/// Zero weights of the transformed layers, and of all convolutions (WAS-SPEC §6).
struct Sparsity {
  int64_t transformed_weights = 0, transformed_zeros = 0;
  int64_t conv_weights = 0, conv_zeros = 0;
  double transformed_rate() const {
    return transformed_weights ? double(transformed_zeros) / transformed_weights : 0.0;
  }
  double conv_rate() const { return conv_weights ? double(conv_zeros) / conv_weights : 0.0; }
};

/// The zeros of the weights transformed layers compute with, and of those
/// and the convolutions left plain.
Sparsity sparsity_of(const std::vector<torch::Tensor>& transformed, const std::vector<torch::Tensor>& plain);

/// Applies WAS to an existing model: every torch::nn::Conv2d whose kernel is
/// larger than 1x1 (grouped and depthwise included), except the excluded ones;
/// under a paper-family policy on a model that names the layers its released
/// code transforms (models::ClassifierImpl::paper_layers), exactly those.
/// The convolutions keep their type and parameters; before a forward pass the
/// controller points each one's `weight` at the tensor to use (its W stays the
/// registered parameter the optimiser updates), ShadowLayer::train_with_draw
/// and infer_with.
class ShadowWeights {
 public:
  ShadowWeights() = default;
  ShadowWeights(std::shared_ptr<torch::nn::Module> model, Policy policy, uint64_t seed);

  bool enabled() const { return !layers_.empty(); }
  const Policy& policy() const { return policy_; }
  uint64_t seed() const { return seed_; }
  const std::vector<ShadowLayer>& layers() const { return layers_; }

  /// Training: a fresh draw for every layer for the forward pass of `step`.
  /// Call it before every training forward.
  void draw_for_training(uint64_t step);
  /// Inference: every layer computes with W (AOM) or the DOM draw.
  void use_mode(const Mode& mode);
  /// Inference with one draw of the training policy from the stream
  /// (seed, domain, layer, step), e.g. a fresh draw per test batch (the
  /// paper's stochastic DOM). mode() is then Mode::stochastic_dom().
  void use_draw(uint64_t seed, StreamDomain domain, uint64_t step);
  const Mode& mode() const { return mode_; }

  Sparsity sparsity(const Mode& mode) const;
  /// The tensors the transformed layers compute with after use_mode (the very
  /// tensors the convolutions see, so a counter can recognise them).
  std::vector<torch::Tensor> active_weights() const;

 private:
  std::shared_ptr<torch::nn::Module> model_;
  Policy policy_;
  uint64_t seed_ = 0;
  std::vector<ShadowLayer> layers_;
  std::vector<torch::nn::Conv2dImpl*> plain_convs_;  // untouched convolutions (1x1, excluded)
  Mode mode_;
};

}  // namespace was
