#include "was/network.h"

namespace was {

Network::Network(models::ModelConfig config, Policy policy, uint64_t seed)
    : config_(std::move(config)), policy_(std::move(policy)), seed_(seed) {
  net_ = models::create_model(config_);
  shadow_ = ShadowWeights(net_, policy_, seed_);
  bn_ = BatchNormBank(*net_);
}

void Network::begin_training_step(uint64_t step, int64_t draw) {
  net_->train();
  // Steps stay far below 2^48, so draw k of step s never meets another step's key.
  shadow_.draw_for_training(step + (static_cast<uint64_t>(draw) << 48));
}

void Network::set_mode(const Mode& mode, bool use_mode_batchnorm) {
  net_->eval();
  shadow_.use_mode(mode);
  if (use_mode_batchnorm && bn_.has(mode.key())) {
    bn_.restore(mode.key());
  } else if (bn_.has(kTrainingBatchNorm)) {
    bn_.restore(kTrainingBatchNorm);
  }
  mode_ = mode;
}

void Network::reestimate_batchnorm(const Mode& mode, int64_t num_batches,
                                   const std::function<torch::Tensor(int64_t)>& batch) {
  shadow_.use_mode(mode);
  bn_.reestimate(*net_, num_batches, [&](int64_t i) { net_->forward(batch(i)); });
  bn_.store(mode.key());
  mode_ = mode;
}

MacCount Network::macs(const Mode& mode) {
  const Mode previous = mode_;
  const bool was_training = net_->is_training();
  net_->eval();
  shadow_.use_mode(mode);
  const std::vector<torch::Tensor> sparse = mode.is_dom() ? shadow_.active_weights() : std::vector<torch::Tensor>{};
  auto count = count_macs([&](torch::Tensor x) { return net_->forward(x); },
                          {1, config_.in_channels, config_.image_size, config_.image_size}, device(), sparse);
  shadow_.use_mode(previous);
  if (was_training) net_->train();
  return count;
}

Sparsity Network::sparsity(const Mode& mode) const { return shadow_.sparsity(mode); }

void Network::to(torch::Device device) {
  net_->to(device);
  shadow_.use_mode(mode_);  // convs that held a shadow tensor follow W
}

torch::Device Network::device() const {
  for (const auto& p : net_->parameters()) return p.device();
  return torch::kCPU;
}

}  // namespace was
