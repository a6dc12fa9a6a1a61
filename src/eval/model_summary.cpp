#include "was/eval/model_summary.h"

#include "was/network.h"
#include "was/paper/tables.h"

namespace was {

ModelSummary summarize_model(const models::ModelConfig& config) {
  Network network(config, Policy{}, 0);
  ModelSummary s;
  s.name = config.name;
  for (const auto& p : network.module().parameters()) s.parameters += p.numel();
  s.aom_macs = network.macs(Mode::aom()).total();
  for (const auto& item : network.module().named_modules("", /*include_self=*/false)) {
    const auto* conv = dynamic_cast<const torch::nn::Conv2dImpl*>(item.value().get());
    if (conv == nullptr) continue;
    ++s.convolutions;
    if (conv->weight.size(2) > 1 || conv->weight.size(3) > 1) s.transformable.push_back(item.key());
  }
  s.released = network.module().paper_layers();
  s.paper_name = paper::model_name(config.name);
  s.paper_flops_m = paper::baseline_flops_m(config.name);
  return s;
}

}  // namespace was
