// Training one run, as `was train` and `was experiment` do: a fresh run from
// what defines it, or the exact continuation of a stored one; validated
// before anything is written, one writer per run directory, data-parallel
// when a rendezvous is given. Progress goes to callbacks: the library
// prints nothing.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "was/core/speed_cache.h"
#include "was/distributed/process_group.h"
#include "was/io/checkpoint.h"
#include "was/train/trainer.h"

namespace was {

struct TrainRequest {
  // What defines a fresh run (a resumed run takes them from its checkpoint).
  std::string model = "small_cnn";
  std::string dataset = "fashion-mnist";
  std::string data_dir;  ///< "" : the dataset's standard place
  std::string policy = "none";
  std::string granularity;  ///< "" : the policy's own
  uint64_t seed = 0;
  int64_t dom_seed = 0;
  int64_t image_size = 0;      ///< imagefolder: resize to N x N (0: keep)
  bool coarse_labels = false;  ///< cifar100: the 20 coarse classes
  TrainOptions options;
  std::string out;     ///< the run directory ("" : runs/MODEL-POLICY-sSEED, or the resumed run's)
  std::string resume;  ///< a checkpoint or run directory to continue exactly ("" : a fresh run)
  /// The settings the caller chose, named as `was train`'s options
  /// ("--epochs", "--was", ...): a protocol refuses those it contradicts,
  /// and a resumed run those its checkpoint fixes.
  std::vector<std::string> given;
  /// A fresh single-process run whose memory format the caller left open
  /// (no --channels-last, no --nchw): NCHW or channels-last, whichever trains
  /// faster here, timed on a few steps of a copy of the network or read from
  /// `speed_cache`; `bf16_auto` (--bf16 auto) adds the bfloat16 candidates.
  /// The choice is printed and stored in the run's options.
  bool choose_memory_format = false;
  bool bf16_auto = false;
  const SpeedCache* speed_cache = nullptr;  ///< null: measure, remember nothing
  bool directory_locked = false;            ///< the caller already holds `out`'s DirectoryLock
  bool force = false;                       ///< a resumed run may replace another run in `out`
  torch::Device device = torch::kCPU;
  distributed::Rendezvous rendezvous;  ///< world_size > 1: this process is one rank
  int64_t bucket_bytes = distributed::kDefaultBucketBytes;

  /// One JSON line per epoch, on the lead rank.
  EpochCallback on_epoch;
  /// After every batch while options.progress is set, on the lead rank.
  BatchCallback on_batch;
  /// A line worth showing ("training ... on ...", "already finished"), on the lead rank.
  std::function<void(const std::string&)> on_message;

  /// Set by train_run: the resumed run was finished already, nothing trained.
  bool was_finished = false;

  bool lead() const { return rendezvous.rank == 0; }
};

/// The fastest of `candidates` for training `model` at `batch` images of
/// `image` ([C, H, W]) here: forward and backward of a copy of the network
/// (the caller's random state untouched), the candidates in alternating
/// rounds, or `cache`'s answer for this processor, model, batch and threads.
SpeedChoice choose_training_speed(const models::ModelConfig& model, const Policy& policy, uint64_t seed, int64_t batch,
                                  torch::Device device, const std::vector<SpeedSettings>& candidates,
                                  const SpeedCache* cache, const std::function<void(const std::string&)>& warn);

/// Trains or continues the run of `request`; returns its final state
/// (unfinished if options.max_steps stopped it). Throws was::Error naming
/// the problem (a bad option, a run already in `out`, a directory another
/// process trains, data that does not fit the checkpoint) before anything is
/// written. `request.out` is set to the run directory used.
RunRecord train_run(TrainRequest& request);

}  // namespace was
