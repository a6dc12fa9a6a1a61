// Training progress on the terminal: a one-line bar on a terminal, five
// plain lines an epoch in a log.
#pragma once

#include "was/train/trainer.h"

namespace was::cli {

/// A BatchCallback that draws the progress on stderr.
BatchCallback progress_on_stderr();

}  // namespace was::cli
