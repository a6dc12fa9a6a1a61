// Checkpoints: W, the BatchNorm statistics of every mode, the model config,
// the policy, the DOM seed, the optimiser state and the RNG state, so that a
// stopped run resumes exactly and a finished one serves both modes.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "was/data/dataset.h"
#include "was/network.h"

namespace was {

/// Bumped whenever the layout changes; older files are refused with a message.
constexpr int kCheckpointVersion = 1;

/// Everything about a run that is not a tensor.
struct RunState {
  models::ModelConfig model;
  std::string policy = "none";
  uint64_t seed = 0;
  int64_t dom_seed = 0;
  std::string dataset;
  std::vector<std::string> class_names;  ///< empty when the dataset has none
  data::Normalization normalization;
  nlohmann::json train_options = nlohmann::json::object();
  int64_t epoch = 0;  ///< epochs fully done
  int64_t batch = 0;  ///< batches done within `epoch` (mid-epoch checkpoints)
  int64_t step = 0;   ///< training forward passes done (the draw counter)
  bool finished = false;
  nlohmann::json history = nlohmann::json::array();   ///< one metrics object per epoch
  nlohmann::json results = nlohmann::json::object();  ///< final evaluation
  /// Named DOM profiles chosen by `was dom-search`: {name, mode (a Mode key),
  /// objective, val_top1, aom_val_top1, macs, aom_macs, sparsity_transformed}.
  nlohmann::json dom_profiles = nlohmann::json::array();

  nlohmann::json to_json() const;
  static RunState from_json(const nlohmann::json& j);
};

/// The mode of the stored DOM profile `name`; throws was::Error listing the
/// stored names when there is none by that name.
Mode profile_mode(const RunState& state, const std::string& name);

/// Writes `path` atomically (a temporary file renamed over it): a crash never
/// leaves a half-written checkpoint, and the previous one stays intact.
void save_checkpoint(const std::string& path, Network& network, const RunState& state,
                     torch::optim::Optimizer* optimizer = nullptr);

struct Checkpoint {
  RunState state;
  std::unique_ptr<Network> network;
  bool has_optimizer = false;
  /// Restores the optimiser state saved with the checkpoint into `optimizer`.
  void restore_optimizer(torch::optim::Optimizer& optimizer);

  std::shared_ptr<torch::serialize::InputArchive> archive;
  std::string path;
};

/// Reads a checkpoint and rebuilds its network on `device`. Throws was::Error
/// naming the file for a missing, truncated, corrupt or foreign file.
Checkpoint load_checkpoint(const std::string& path, torch::Device device = torch::kCPU);

/// Reads only the run state (for `was info`).
RunState read_run_state(const std::string& path);

}  // namespace was
