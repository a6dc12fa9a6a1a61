// What a zoo model is: its size, its cost, what WAS transforms in it, and the
// paper's figure beside it (`was models`).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "was/models/classifier.h"

namespace was {

struct ModelSummary {
  std::string name;
  int64_t parameters = 0;  ///< trainable, without the paper family's gains
  int64_t aom_macs = 0;    ///< per image at config.image_size
  int64_t convolutions = 0;
  /// The layers a policy transforms: WAS-SPEC §2's (every conv larger than 1x1)
  /// and, for `_paper` models, the released code's (§8).
  std::vector<std::string> transformable;
  std::optional<std::vector<std::string>> released;
  std::string paper_name;               ///< "" when the paper has no such model
  std::optional<double> paper_flops_m;  ///< the paper's Table 2 baseline column
};

/// Builds the model of `config` (weights from torch's generator) and describes it.
ModelSummary summarize_model(const models::ModelConfig& config);

}  // namespace was
