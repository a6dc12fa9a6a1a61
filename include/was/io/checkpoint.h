// Checkpoints: W, the BatchNorm statistics of every mode, the run record
// (was/record/run_record.h) and the optimiser state, so that a
// stopped run resumes exactly and a finished one serves both modes.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "was/network.h"
#include "was/record/run_record.h"

namespace was {

/// Bumped whenever the layout changes; older files are refused with a message.
constexpr int kCheckpointVersion = 1;

/// Writes `path` atomically (a temporary file renamed over it): a crash never
/// leaves a half-written checkpoint, and the previous one stays intact.
void save_checkpoint(const std::string& path, Network& network, const RunRecord& state,
                     torch::optim::Optimizer* optimizer = nullptr);

struct Checkpoint {
  RunRecord state;
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
RunRecord read_run_state(const std::string& path);

}  // namespace was
