#include "was/shadow.h"

#include <algorithm>
#include <set>

#include "was/core/error.h"
#include "was/models/classifier.h"
#include "was/nn/layers.h"

namespace was {

// --- Mode --------------------------------------------------------------------

Mode Mode::dom(int64_t seed, const Policy& policy) {
  policy.validate();
  return {Kind::kDom, seed, policy.to_string()};
}

std::string Mode::key() const {
  if (kind == Kind::kAom) return "aom";
  return "dom:" + std::to_string(dom_seed) + (policy.empty() ? "" : "/" + policy);
}

Mode Mode::parse(const std::string& text) {
  if (text == "aom" || text == "AOM") return aom();
  if (text == "dom" || text == "DOM") return dom(0);
  if (text.rfind("dom:", 0) == 0) {
    const auto slash = text.find('/');
    const std::string seed = text.substr(4, slash == std::string::npos ? std::string::npos : slash - 4);
    char* end = nullptr;
    const long long v = std::strtoll(seed.c_str(), &end, 10);
    if (!seed.empty() && end == seed.c_str() + seed.size() && v >= 0)
      return slash == std::string::npos ? dom(v) : dom(v, Policy::parse(text.substr(slash + 1)));
  }
  throw Error("unknown mode '" + text + "'",
              "modes are aom, dom, dom:SEED (a non-negative integer) or dom:SEED/POLICY");
}

// --- ShadowLayer ---------------------------------------------------------------

ShadowLayer::ShadowLayer(std::string name, int64_t index, torch::nn::Conv2dImpl* conv, Policy policy)
    : name_(std::move(name)),
      index_(index),
      conv_(conv),
      deferred_(dynamic_cast<DeferredWeightConv2dImpl*>(conv)),
      plain_(conv->weight),
      policy_(std::move(policy)) {
  if (!policy_.gain) return;
  // Registered once on the convolution, so that the optimiser, checkpoints
  // and exports see it as one of the model's parameters.
  if (const auto* existing = conv_->named_parameters(/*recurse=*/false).find(kShadowGainName)) {
    gain_ = *existing;
  } else {
    torch::NoGradGuard no_grad;
    gain_ = conv_->register_parameter(kShadowGainName, torch::rand({}, plain_.options()));
  }
}

ShadowLayer::ShadowLayer(std::string name, int64_t index, torch::Tensor plain_weight, torch::Tensor gain, Policy policy)
    : name_(std::move(name)),
      index_(index),
      conv_(nullptr),
      deferred_(nullptr),
      plain_(std::move(plain_weight)),
      gain_(std::move(gain)),
      policy_(std::move(policy)) {
  if (!plain_.defined() || plain_.dim() != 4)
    throw Error("layer '" + name_ + "': a convolution weight is [out, in/groups, kh, kw], not " +
                (plain_.defined() ? c10::str(plain_.sizes()) : std::string("undefined")));
  if (policy_.gain != gain_.defined())
    throw Error("layer '" + name_ + "': " +
                (policy_.gain ? std::string("the policy has a gain and none was given")
                              : std::string("a gain was given to a policy without one")));
}

torch::nn::Conv2dImpl& ShadowLayer::conv() const {
  if (conv_ == nullptr) throw Error("layer '" + name_ + "' was built from a tensor and has no LibTorch convolution");
  return *conv_;
}

std::vector<TransformParams> ShadowLayer::draw(uint64_t seed, StreamDomain domain, uint64_t step) const {
  const int64_t kh = plain_.size(2), kw = plain_.size(3);
  CounterStream stream(seed, domain, static_cast<uint64_t>(index_), step);
  const int64_t count = policy_.granularity == Granularity::kFilter ? plain_.size(0) : 1;
  std::vector<TransformParams> params;
  params.reserve(count);
  for (int64_t i = 0; i < count; ++i) params.push_back(draw_params(policy_, kh, kw, stream));
  return params;
}

torch::Tensor ShadowLayer::shadow_weight(const std::vector<TransformParams>& params) const {
  auto s = params.size() == 1 ? apply_transform(plain_, params.front()) : apply_transform(plain_, params);
  return gain_.defined() ? gain_ * s : s;
}

torch::Tensor ShadowLayer::training_weight(uint64_t run_seed, uint64_t step) const {
  const auto params = draw(run_seed, StreamDomain::kTrainingDraw, step);
  // An identity draw (frequent under -C and p < 1) leaves S = W: skip the
  // transform and its backward (A = I gives the same bits anyway).
  const int64_t kh = plain_.size(2), kw = plain_.size(3);
  if (std::all_of(params.begin(), params.end(), [&](const TransformParams& p) { return p.is_identity(kh, kw); }))
    return gain_.defined() ? gain_ * plain_ : plain_;
  return shadow_weight(params);
}

torch::Tensor ShadowLayer::dom_weight(int64_t dom_seed, const Policy* policy) const {
  // Never cached here: LibTorch's optimisers update W through .data(), which
  // does not bump W's version counter, so a stale cache could not be detected.
  torch::NoGradGuard no_grad;
  if (policy == nullptr) return shadow_weight(draw(static_cast<uint64_t>(dom_seed), StreamDomain::kDomDraw, 0));
  // The same stream, read with the inference policy's ranges and granularity.
  const int64_t kh = plain_.size(2), kw = plain_.size(3);
  CounterStream stream(static_cast<uint64_t>(dom_seed), StreamDomain::kDomDraw, static_cast<uint64_t>(index_), 0);
  const int64_t count = policy->granularity == Granularity::kFilter ? plain_.size(0) : 1;
  std::vector<TransformParams> params;
  for (int64_t i = 0; i < count; ++i) params.push_back(draw_params(*policy, kh, kw, stream));
  return shadow_weight(params);
}

torch::Tensor ShadowLayer::weight_for(const Mode& mode) const {
  if (!mode.is_dom()) return plain_;
  if (mode.policy.empty()) return dom_weight(mode.dom_seed);
  const Policy policy = Policy::parse(mode.policy);
  return dom_weight(mode.dom_seed, &policy);
}

void ShadowLayer::train_with_draw(uint64_t run_seed, uint64_t step) const {
  if (conv_ == nullptr) conv();  // throws: nothing to point at the draw
  if (deferred_ == nullptr) {
    conv_->weight = training_weight(run_seed, step);
    return;
  }
  deferred_->weight = plain_;
  deferred_->defer_training_weight([layer = *this, run_seed, step] { return layer.training_weight(run_seed, step); });
}

void ShadowLayer::infer_with(torch::Tensor weight) const {
  if (conv_ == nullptr) conv();  // throws
  if (deferred_ != nullptr) deferred_->defer_training_weight(nullptr);
  conv_->weight = std::move(weight);
}

// --- WasConv2d -------------------------------------------------------------------

WasConv2dImpl::WasConv2dImpl(torch::nn::Conv2dOptions options, Policy policy, uint64_t seed, int64_t layer_index)
    : DeferredWeightConv2dImpl(options), seed_(seed) {
  policy.validate();
  shadow_ = std::make_unique<ShadowLayer>("", layer_index, this, std::move(policy));
}

void WasConv2dImpl::attach_to_controller(uint64_t seed, int64_t layer_index) {
  controlled_ = true;
  seed_ = seed;
  shadow_ = std::make_unique<ShadowLayer>(shadow_->name(), layer_index, this, shadow_->policy());
}

void WasConv2dImpl::set_mode(const Mode& mode) {
  mode_ = mode;
  dom_weight_ = mode.is_dom() ? shadow_->weight_for(mode) : torch::Tensor();
}

void WasConv2dImpl::train(bool on) {
  DeferredWeightConv2dImpl::train(on);
  if (on) dom_weight_ = torch::Tensor();
}

torch::Tensor WasConv2dImpl::eval_weight() {
  if (!mode_.is_dom()) return weight;
  if (!dom_weight_.defined()) dom_weight_ = shadow_->weight_for(mode_);
  return dom_weight_;
}

torch::Tensor WasConv2dImpl::forward(const torch::Tensor& input) {
  if (controlled_) return DeferredWeightConv2dImpl::forward(input);
  if (is_training()) return _conv_forward(input, shadow_->training_weight(seed_, step_++));
  return _conv_forward(input, eval_weight());
}

// --- ShadowWeights ------------------------------------------------------------------

ShadowWeights::ShadowWeights(std::shared_ptr<torch::nn::Module> model, Policy policy, uint64_t seed)
    : model_(std::move(model)), policy_(std::move(policy)), seed_(seed) {
  policy_.validate();
  std::set<std::string> unmatched(policy_.exclude.begin(), policy_.exclude.end());
  // The paper family transforms what the released code transforms, where the model says.
  std::optional<std::set<std::string>> released;
  if (policy_.is_paper())
    if (const auto* classifier = dynamic_cast<const models::ClassifierImpl*>(model_.get()))
      if (const auto& layers = classifier->paper_layers()) released.emplace(layers->begin(), layers->end());
  std::vector<std::string> names;
  int64_t index = 0;
  for (const auto& item : model_->named_modules("", /*include_self=*/false)) {
    auto* conv = dynamic_cast<torch::nn::Conv2dImpl*>(item.value().get());
    if (conv == nullptr) continue;
    names.push_back(item.key());
    const auto& w = conv->weight;
    const bool excluded = unmatched.erase(item.key()) > 0 || std::find(policy_.exclude.begin(), policy_.exclude.end(),
                                                                       item.key()) != policy_.exclude.end();
    const bool not_released = released && released->count(item.key()) == 0;
    if (policy_.empty() || excluded || not_released || (w.size(2) == 1 && w.size(3) == 1)) {  // WAS-SPEC §2, §8
      plain_convs_.push_back(conv);
      continue;
    }
    if (auto* self = dynamic_cast<WasConv2dImpl*>(conv)) {
      self->attach_to_controller(seed_, index);  // it keeps its own policy
      layers_.push_back(self->shadow());
    } else {
      layers_.emplace_back(item.key(), index, conv, policy_);
    }
    ++index;
  }
  if (!unmatched.empty()) {
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    throw Error("policy excludes '" + *unmatched.begin() + "', but the model has no convolution of that name",
                "convolutions of this model: " + known);
  }
}

void ShadowWeights::draw_for_training(uint64_t step) {
  for (const auto& layer : layers_) layer.train_with_draw(seed_, step);
}

void ShadowWeights::use_draw(uint64_t seed, StreamDomain domain, uint64_t step) {
  torch::NoGradGuard no_grad;
  mode_ = Mode::stochastic_dom();
  for (const auto& layer : layers_) layer.infer_with(layer.shadow_weight(layer.draw(seed, domain, step)));
}

void ShadowWeights::use_mode(const Mode& mode) {
  mode_ = mode;
  for (const auto& layer : layers_) layer.infer_with(layer.weight_for(mode));
}

std::vector<torch::Tensor> ShadowWeights::active_weights() const {
  std::vector<torch::Tensor> out;
  out.reserve(layers_.size());
  for (const auto& layer : layers_) out.push_back(layer.conv().weight);
  return out;
}

Sparsity ShadowWeights::sparsity(const Mode& mode) const {
  std::vector<torch::Tensor> transformed, plain;
  for (const auto& layer : layers_) transformed.push_back(layer.weight_for(mode));
  for (const auto* conv : plain_convs_) plain.push_back(conv->weight);
  return sparsity_of(transformed, plain);
}

Sparsity sparsity_of(const std::vector<torch::Tensor>& transformed, const std::vector<torch::Tensor>& plain) {
  torch::NoGradGuard no_grad;
  const auto zeros = [](const torch::Tensor& w) { return w.numel() - w.count_nonzero().item<int64_t>(); };
  Sparsity s;
  for (const auto& w : transformed) {
    s.transformed_weights += w.numel();
    s.transformed_zeros += zeros(w);
  }
  s.conv_weights = s.transformed_weights;
  s.conv_zeros = s.transformed_zeros;
  for (const auto& w : plain) {
    s.conv_weights += w.numel();
    s.conv_zeros += zeros(w);
  }
  return s;
}

}  // namespace was
