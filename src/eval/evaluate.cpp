#include "was/eval/evaluate.h"

#include "was/error.h"

namespace was {

EvalResult evaluate(Network& network, const data::BatchLoader& loader, const Mode& mode, bool use_mode_batchnorm) {
  torch::NoGradGuard no_grad;
  network.set_mode(mode, use_mode_batchnorm);
  EvalResult result;
  double loss_sum = 0.0;
  for (int64_t b = 0; b < loader.batches_per_epoch(); ++b) {
    const auto batch = loader.batch(0, b);
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
