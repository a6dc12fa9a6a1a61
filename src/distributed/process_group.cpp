#include "was/distributed/process_group.h"

// c10d with Gloo is in Debian's LibTorch (with libgloo-dev for its headers);
// a LibTorch without it still builds, and says so when asked to distribute.
#if defined(USE_C10D_GLOO) && __has_include(<gloo/rendezvous/store.h>) && \
    __has_include(<torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>)
#define WAS_HAVE_GLOO 1
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

#include <chrono>
#include <cstdlib>
#include <map>

#include "was/core/error.h"

namespace was::distributed {
namespace {

int64_t env_integer(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  if (end == v || *end != '\0')
    throw Error(std::string("environment variable ") + name + "='" + v + "' is not an integer");
  return x;
}

/// The tensors grouped by dtype, so each group travels as one flat buffer.
std::map<c10::ScalarType, std::vector<torch::Tensor>> by_dtype(const std::vector<torch::Tensor>& tensors) {
  std::map<c10::ScalarType, std::vector<torch::Tensor>> groups;
  for (const auto& t : tensors)
    if (t.defined() && t.numel() > 0) groups[t.scalar_type()].push_back(t);
  return groups;
}

}  // namespace

void Rendezvous::read_environment(bool rank_given, bool world_given, bool addr_given, bool port_given) {
  if (!rank_given) rank = env_integer("RANK", rank);
  if (!world_given) world_size = env_integer("WORLD_SIZE", world_size);
  if (!addr_given) {
    const char* addr = std::getenv("MASTER_ADDR");
    if (addr != nullptr && *addr != '\0') master_addr = addr;
  }
  if (!port_given) master_port = env_integer("MASTER_PORT", master_port);
}

void Rendezvous::validate() const {
  if (world_size < 1) throw Error("--world-size must be at least 1, got " + std::to_string(world_size));
  if (rank < 0 || rank >= world_size)
    throw Error("--rank " + std::to_string(rank) + " is outside 0.." + std::to_string(world_size - 1),
                "ranks count from 0 to world size - 1");
  if (master_port < 1 || master_port > 65535)
    throw Error("--master-port must lie in 1..65535, got " + std::to_string(master_port));
  if (master_addr.empty()) throw Error("--master-addr must not be empty");
  if (timeout_s < 1) throw Error("--dist-timeout must be at least 1 second");
}

#ifdef WAS_HAVE_GLOO

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
};

ProcessGroup::ProcessGroup(const Rendezvous& r) : rendezvous_(r), impl_(std::make_unique<Impl>()) {
  r.validate();
  const std::string where = r.master_addr + ":" + std::to_string(r.master_port);
  const std::string me = "rank " + std::to_string(r.rank) + "/" + std::to_string(r.world_size);
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(r.master_port);
    options.isServer = r.rank == 0;
    options.numWorkers = static_cast<size_t>(r.world_size);
    options.waitWorkers = true;
    options.timeout = std::chrono::seconds(r.timeout_s);
    impl_->store = c10::make_intrusive<c10d::TCPStore>(r.master_addr, options);
  } catch (const std::exception& e) {
    const std::string what = e.what();
    if (r.rank == 0 && what.find("ddress already in use") != std::string::npos)
      throw Error(me + ": port " + std::to_string(r.master_port) + " on " + r.master_addr + " is already in use",
                  "choose another --master-port (or MASTER_PORT)");
    throw Error(me + ": no rendezvous at " + where + " within " + std::to_string(r.timeout_s) + " s",
                r.rank == 0 ? "every rank must start and reach --master-addr:--master-port"
                            : "start rank 0 there, or check --master-addr and --master-port");
  }
  try {
    auto options = c10d::ProcessGroupGloo::Options::create();
    options->timeout = std::chrono::seconds(r.timeout_s);
    // The interface that reaches the master; loopback when everyone is local.
    options->devices.push_back(r.master_addr == "127.0.0.1" || r.master_addr == "localhost"
                                   ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                   : c10d::ProcessGroupGloo::createDefaultDevice());
    impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, static_cast<int>(r.rank),
                                                               static_cast<int>(r.world_size), options);
  } catch (const std::exception& e) {
    throw Error(me + ": could not connect to the other ranks through " + where + " (" + e.what() + ")");
  }
}

ProcessGroup::~ProcessGroup() = default;
bool ProcessGroup::supported() { return true; }

namespace {

[[noreturn]] void throw_lost_peers(int64_t rank, const char* what, const std::exception& e) {
  throw Error("rank " + std::to_string(rank) + ": lost the other ranks during " + what + " (" +
                  std::string(e.what()).substr(0, 200) + ")",
              "a rank died or hangs; the last complete checkpoint is intact: restart with --resume");
}

/// Runs `collective` on one flat bucket per dtype of `tensors`, then copies
/// the bucket back into them; a failure becomes a was::Error naming `rank`.
template <typename Collective>
void bucketed(const std::vector<torch::Tensor>& tensors, int64_t rank, const char* what, Collective collective) {
  torch::NoGradGuard no_grad;
  for (auto& [dtype, group] : by_dtype(tensors)) {
    std::vector<torch::Tensor> flat_parts;
    for (const auto& t : group) flat_parts.push_back(t.detach().reshape({-1}));
    std::vector<at::Tensor> bucket = {torch::cat(flat_parts)};
    try {
      collective(bucket)->wait();
    } catch (const std::exception& e) {
      throw_lost_peers(rank, what, e);
    }
    int64_t offset = 0;
    for (const auto& t : group) {
      const int64_t n = t.numel();
      t.detach().copy_(bucket[0].slice(0, offset, offset + n).view(t.sizes()));
      offset += n;
    }
  }
}

}  // namespace

void ProcessGroup::allreduce_sum(const std::vector<torch::Tensor>& tensors) {
  if (world_size() == 1) return;
  bucketed(tensors, rank(), "an all-reduce", [&](std::vector<at::Tensor>& b) { return impl_->group->allreduce(b); });
}

PendingCollective ProcessGroup::allreduce_sum_async(const torch::Tensor& flat) {
  if (world_size() == 1) return {};
  TORCH_CHECK(flat.is_contiguous(), "allreduce_sum_async: the tensor must be contiguous");
  std::vector<at::Tensor> bucket = {flat};
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = impl_->group->allreduce(bucket);
  } catch (const std::exception& e) {
    throw_lost_peers(rank(), "an all-reduce", e);
  }
  const int64_t me = rank();
  return PendingCollective([work, me] {
    try {
      work->wait();
    } catch (const std::exception& e) {
      throw_lost_peers(me, "an all-reduce", e);
    }
  });
}

void ProcessGroup::broadcast(const std::vector<torch::Tensor>& tensors, int64_t root) {
  if (world_size() == 1) return;
  c10d::BroadcastOptions options;
  options.rootRank = root;
  bucketed(tensors, rank(), "a broadcast",
           [&](std::vector<at::Tensor>& b) { return impl_->group->broadcast(b, options); });
}

#else  // no Gloo in this LibTorch

struct ProcessGroup::Impl {};

ProcessGroup::ProcessGroup(const Rendezvous& r) : rendezvous_(r) {
  r.validate();
  throw Error("this build of was has no data-parallel support (LibTorch without c10d/Gloo)",
              "build against Debian's libtorch-dev with libgloo-dev installed, or train in one process");
}
ProcessGroup::~ProcessGroup() = default;
bool ProcessGroup::supported() { return false; }
void ProcessGroup::allreduce_sum(const std::vector<torch::Tensor>&) {}
PendingCollective ProcessGroup::allreduce_sum_async(const torch::Tensor&) { return {}; }
void ProcessGroup::broadcast(const std::vector<torch::Tensor>&, int64_t) {}

#endif  // WAS_HAVE_GLOO

void ProcessGroup::barrier() {
  if (world_size() == 1) return;
  std::vector<torch::Tensor> token = {torch::zeros({1})};
  allreduce_sum(token);
}

uint64_t weights_digest(torch::nn::Module& module) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a over the raw bytes
  const auto mix = [&](const torch::Tensor& t) {
    const auto c = t.detach().to(torch::kCPU).contiguous();
    const auto* p = static_cast<const uint8_t*>(c.data_ptr());
    for (size_t i = 0; i < c.nbytes(); ++i) h = (h ^ p[i]) * 1099511628211ULL;
  };
  for (const auto& p : module.parameters()) mix(p);
  for (const auto& b : module.buffers()) mix(b);
  return h;
}

}  // namespace was::distributed
