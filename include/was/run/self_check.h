// Does a stored model compute what its modes promise? AOM must equal a plain
// forward with W, DOM a forward with the shadow weights of its seed drawn as
// WAS-SPEC §4 says (g * T(W) for the paper family), each with its own
// BatchNorm statistics; the stored statistics, MACs and sparsity must be what
// the weights give when recomputed.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "was/io/checkpoint.h"

namespace was {

struct CheckLine {
  enum class Outcome { kPass, kFail, kSkip } outcome = Outcome::kPass;
  std::string what;
  const char* tag() const { return outcome == Outcome::kPass ? "PASS" : outcome == Outcome::kFail ? "FAIL" : "SKIP"; }
};

struct CheckReport {
  std::vector<CheckLine> lines;
  int passed = 0, failed = 0, skipped = 0;
  bool finished = true;  ///< false: an unfinished run, judged as one (no final results to compare yet)
  bool consistent() const { return failed == 0; }
  /// "consistent" only when every check was made and passed; otherwise it
  /// says what was skipped, or that the run is unfinished, or what failed.
  std::string verdict() const;
};

/// Checks every mode of `checkpoint` (AOM, its DOM, its stored DOM profiles)
/// against an independent recomputation on a fixed probe batch, within
/// `tolerance` (relative to the outputs' scale); the training images are read
/// from `data_dir` ("" : the standard place) to recompute BatchNorm
/// statistics, and the check is skipped, saying why, where they cannot be.
/// `on_line` sees each line as it is decided.
CheckReport check_checkpoint(Checkpoint& checkpoint, const std::string& data_dir, double tolerance,
                             torch::Device device, const std::function<void(const CheckLine&)>& on_line = {});

}  // namespace was
