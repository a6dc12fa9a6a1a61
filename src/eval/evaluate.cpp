#include "was/eval/evaluate.h"

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

}  // namespace was
