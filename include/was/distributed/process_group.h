// Data-parallel training across processes and hosts on PyTorch's own
// distributed engine (c10d): rendezvous through a TCPStore, collectives over
// Gloo. The c10d and Gloo headers stay inside src/dist/.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace was::distributed {

/// Where the processes of a run meet: as PyTorch's launchers name them
/// (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT).
struct Rendezvous {
  int64_t rank = 0;
  int64_t world_size = 1;
  std::string master_addr = "127.0.0.1";
  int64_t master_port = 29500;
  int64_t timeout_s = 60;  ///< rendezvous and every collective give up after this
  /// The interfaces Gloo uses (--dist-iface, GLOO_SOCKET_IFNAME); empty: the
  /// one whose address routes to the master.
  std::vector<std::string> interfaces;

  bool distributed() const { return world_size > 1; }
  /// Fields not given on the command line (`given`) from the environment
  /// variables RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, GLOO_SOCKET_IFNAME.
  void read_environment(bool rank_given, bool world_given, bool addr_given, bool port_given,
                        bool interfaces_given = false);
  /// Throws was::Error naming the bad value.
  void validate() const;
};

/// A collective in flight: wait() blocks until it is done and throws
/// was::Error, naming the rank, if a peer was lost.
class PendingCollective {
 public:
  PendingCollective() = default;
  explicit PendingCollective(std::function<void()> wait) : wait_(std::move(wait)) {}
  bool pending() const { return static_cast<bool>(wait_); }
  void wait() {
    if (!wait_) return;
    auto w = std::move(wait_);
    wait_ = nullptr;
    w();
  }

 private:
  std::function<void()> wait_;
};

/// One process's membership in the group. Every failure (a peer that died or
/// hangs, a port in use, a master that does not answer, a rank that would be
/// reachable only on its own loopback) surfaces as a was::Error naming this
/// rank and the one it waited for, within the timeout.
class ProcessGroup {
 public:
  explicit ProcessGroup(const Rendezvous& rendezvous);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  /// Whether this build has c10d with Gloo (else the constructor throws).
  static bool supported();

  int64_t rank() const { return rendezvous_.rank; }
  int64_t world_size() const { return rendezvous_.world_size; }
  /// The address the other ranks reach this one at, and where it came from
  /// ("interface eth0", "the route to the master").
  const std::string& address() const { return address_; }
  const std::string& address_source() const { return address_source_; }

  /// Sums the tensors in place across ranks, packed into one flat bucket
  /// (one all-reduce instead of one per tensor).
  void allreduce_sum(const std::vector<torch::Tensor>& tensors);
  /// Starts summing `flat` (one contiguous tensor) in place across ranks and
  /// returns at once; the sum is there after wait(). Every rank must start
  /// its collectives in the same order.
  PendingCollective allreduce_sum_async(const torch::Tensor& flat);
  /// Copies `root`'s tensors into every rank's, in place.
  void broadcast(const std::vector<torch::Tensor>& tensors, int64_t root = 0);
  void barrier();

 private:
  struct Impl;
  Rendezvous rendezvous_;
  std::string address_, address_source_;
  std::unique_ptr<Impl> impl_;
};

/// A stable 64-bit digest of the module's parameters and buffers (bytes in
/// order), for checking that ranks hold bit-identical weights.
uint64_t weights_digest(torch::nn::Module& module);

}  // namespace was::distributed
