// `was train` as a function, for the commands that train (train, experiment).
#pragma once

#include <string>
#include <vector>

#include "common.h"
#include "was/distributed/process_group.h"
#include "was/io/checkpoint.h"
#include "was/train/trainer.h"

namespace was::cli {

/// Everything `was train` takes.
struct TrainArgs {
  std::string model = "small_cnn";
  std::string dataset = "fashion-mnist";
  std::string data_dir;
  std::string policy = "none";
  std::string granularity;
  std::string out;
  std::string resume;
  bool force = false;  ///< --force: a resumed run may replace the run in --out
  uint64_t seed = 0;
  int64_t dom_seed = 0;
  int64_t image_size = 0;
  bool coarse_labels = false;
  bool augment = false, no_augment = false;
  bool no_progress = false;
  bool print_epochs = true;       ///< one JSON line per epoch on stdout
  bool directory_locked = false;  ///< the caller already holds `out`'s DirectoryLock
  TrainOptions options;
  bool nchw = false;  ///< --nchw: NCHW, not measured
  std::string bf16;   ///< --bf16 [on|off|auto]
  RuntimeOptions runtime;
  int64_t nproc = 1;                   ///< > 1: start this many local ranks (a launcher)
  distributed::Rendezvous rendezvous;  ///< this process's rank, when data-parallel
  double bucket_mb = double(distributed::kDefaultBucketBytes) / double(1 << 20);  ///< gradient bucket size
};

/// Trains a fresh run, or continues `a.resume`; `explicit_flags` are the
/// options the user gave (those that a checkpoint fixes are refused with
/// --resume). Returns the final state (unfinished if --max-steps stopped it).
RunRecord run_train(TrainArgs& a, const std::vector<std::string>& explicit_flags);

/// The finished run's figures (modes, stochastic DOM, selections) on stderr.
void print_results(const RunRecord& state, const std::string& out_dir);

}  // namespace was::cli
