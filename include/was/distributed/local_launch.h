// Data-parallel training on one machine: the same command line started N
// times as ranks 0..N-1 (`was train --nproc N`), rendezvous on loopback.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace was::distributed {

/// A TCP port on the loopback interface that was free a moment ago, for a
/// local rendezvous. Throws was::Error when none can be had.
int64_t free_local_port();

/// Runs `program` with `args` (args[0] is the name it sees) `nproc` times,
/// rank r with RANK=r, WORLD_SIZE=nproc, MASTER_ADDR=127.0.0.1 and
/// MASTER_PORT=`master_port`; waits for every rank. When one fails, the
/// others (which could only wait for it) are stopped and was::Error names the
/// rank and how it ended.
void launch_local_ranks(const std::string& program, const std::vector<std::string>& args, int64_t nproc,
                        int64_t master_port);

}  // namespace was::distributed
