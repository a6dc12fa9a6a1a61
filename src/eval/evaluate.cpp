#include "was/eval/evaluate.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <optional>

#include "was/core/error.h"

namespace was {

EvalResult evaluate(Network& network, const data::BatchLoader& loader, const Mode& mode, bool use_mode_batchnorm) {
  return evaluate(network, loader, EvalWeights::of(mode), Normalisation::kRunning, use_mode_batchnorm);
}

namespace {

// The released code's evaluation: modules in training mode for the forward,
// the running statistics and torch's generator put back afterwards.
class BatchStatisticsScope {
 public:
  BatchStatisticsScope(Network& network, uint64_t seed, int64_t epoch)
      : network_(network), generator_(torch::globalContext().defaultGenerator(torch::kCPU)) {
    {
      std::lock_guard<std::mutex> lock(generator_.mutex());
      rng_state_ = generator_.get_state();
    }
    network_.batchnorm().store(kKey);
    CounterStream stream(seed, StreamDomain::kPaperEval, 0, static_cast<uint64_t>(epoch));
    torch::manual_seed(stream.next_u64() >> 1);  // dropout masks of this evaluation
    network_.module().train();
  }
  ~BatchStatisticsScope() {
    network_.module().eval();
    network_.batchnorm().restore(kKey);
    network_.batchnorm().erase(kKey);
    std::lock_guard<std::mutex> lock(generator_.mutex());
    generator_.set_state(rng_state_);
  }

 private:
  static constexpr const char* kKey = "eval:batch-statistics";
  Network& network_;
  at::Generator generator_;
  torch::Tensor rng_state_;
};

}  // namespace

EvalResult evaluate(Network& network, const data::BatchLoader& loader, const EvalWeights& weights,
                    Normalisation normalisation, bool use_mode_batchnorm, int64_t epoch, uint64_t seed) {
  torch::NoGradGuard no_grad;
  // A stochastic DOM has no statistics of its own: training's, which saw the same draws.
  network.set_mode(weights.fresh_draws ? Mode::dom(0) : weights.mode, use_mode_batchnorm && !weights.fresh_draws);
  std::optional<BatchStatisticsScope> batch_statistics;
  if (normalisation == Normalisation::kBatch) batch_statistics.emplace(network, seed, epoch);
  EvalResult result;
  double loss_sum = 0.0;
  for (int64_t b = 0; b < loader.batches_per_epoch(); ++b) {
    if (weights.fresh_draws)
      network.shadow().use_draw(weights.draw_seed, StreamDomain::kStochasticDom, static_cast<uint64_t>(b));
    const auto batch = loader.batch(epoch, b);
    const auto logits = network.forward(batch.images);
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, batch.labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    result.correct += logits.argmax(1).eq(batch.labels).sum().item<int64_t>();
    result.total += batch.labels.size(0);
  }
  result.loss = result.total ? loss_sum / double(result.total) : 0.0;
  return result;
}

nlohmann::json RepeatedResult::to_json() const {
  return {{"top1", top1}, {"mean", mean}, {"sd", sd}, {"min", min}, {"max", max}, {"repeats", top1.size()}};
}

RepeatedResult RepeatedResult::from_json(const nlohmann::json& j) {
  RepeatedResult r;
  r.top1 = j.at("top1").get<std::vector<double>>();
  r.mean = j.at("mean").get<double>();
  r.sd = j.at("sd").get<double>();
  r.min = j.at("min").get<double>();
  r.max = j.at("max").get<double>();
  return r;
}

RepeatedResult evaluate_stochastic_dom(Network& network, const data::BatchLoader& loader, int64_t repeats,
                                       Normalisation normalisation, uint64_t seed) {
  if (repeats < 1) throw Error("the stochastic DOM needs at least 1 pass, got " + std::to_string(repeats));
  if (!network.shadow().enabled()) throw Error("this network was trained without WAS: it has no DOM");
  RepeatedResult r;
  for (int64_t i = 0; i < repeats; ++i)
    r.top1.push_back(evaluate(network, loader, EvalWeights::stochastic(static_cast<uint64_t>(i)), normalisation, true,
                              /*epoch=*/0, seed)
                         .top1());
  double sum = 0.0;
  for (double t : r.top1) sum += t;
  r.mean = sum / double(repeats);
  double sq = 0.0;
  for (double t : r.top1) sq += (t - r.mean) * (t - r.mean);
  r.sd = repeats > 1 ? std::sqrt(sq / double(repeats - 1)) : 0.0;
  r.min = *std::min_element(r.top1.begin(), r.top1.end());
  r.max = *std::max_element(r.top1.begin(), r.top1.end());
  network.set_mode(Mode::aom());
  return r;
}

EvalResult evaluate_ensemble(Network& network, const data::BatchLoader& loader, const std::vector<Mode>& modes) {
  if (modes.empty()) throw Error("evaluate_ensemble: an ensemble needs at least one mode");
  torch::NoGradGuard no_grad;
  // Modes outermost: each mode's weights and statistics are switched in once.
  std::vector<torch::Tensor> mean_probs(static_cast<size_t>(loader.batches_per_epoch()));
  for (const auto& mode : modes) {
    network.set_mode(mode, true);
    for (int64_t b = 0; b < loader.batches_per_epoch(); ++b) {
      const auto probs = torch::softmax(network.forward(loader.batch(0, b).images), 1);
      auto& acc = mean_probs[static_cast<size_t>(b)];
      acc = acc.defined() ? acc + probs : probs;
    }
  }
  EvalResult result;
  double loss_sum = 0.0;
  for (int64_t b = 0; b < loader.batches_per_epoch(); ++b) {
    const auto labels = loader.batch(0, b).labels;
    const auto probs = mean_probs[static_cast<size_t>(b)] / double(modes.size());
    loss_sum -= probs.gather(1, labels.unsqueeze(1)).clamp_min(1e-12).log().sum().item<double>();
    result.correct += probs.argmax(1).eq(labels).sum().item<int64_t>();
    result.total += labels.size(0);
  }
  result.loss = result.total ? loss_sum / double(result.total) : 0.0;
  return result;
}

DropRate drop_rate(double clean_top1, double augmented_top1) {
  DropRate d;
  d.absolute = clean_top1 - augmented_top1;
  d.relative = clean_top1 > 0.0 ? 100.0 * d.absolute / clean_top1 : 0.0;
  return d;
}

}  // namespace was
