#include "was/distributed/process_group.h"

// c10d with Gloo is in Debian's LibTorch (with libgloo-dev for its headers);
// a LibTorch without it still builds, and says so when asked to distribute.
#if defined(USE_C10D_GLOO) && __has_include(<gloo/rendezvous/store.h>) && \
    __has_include(<torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>)
#define WAS_HAVE_GLOO 1
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <future>
#include <map>
#include <thread>

#include "was/core/error.h"
#include "was/distributed/network_address.h"

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

void Rendezvous::read_environment(bool rank_given, bool world_given, bool addr_given, bool port_given,
                                  bool interfaces_given) {
  if (!interfaces_given) {
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    if (ifname != nullptr) interfaces = split_interfaces(ifname);
  }
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

namespace {

using Clock = std::chrono::steady_clock;

std::vector<uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }
std::string text_of(const std::vector<uint8_t>& b) { return {b.begin(), b.end()}; }
std::string rank_key(const char* what, int64_t rank) { return std::string("was/") + what + "/" + std::to_string(rank); }

std::chrono::milliseconds left_until(Clock::time_point deadline) {
  return std::max(std::chrono::milliseconds(1),
                  std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
}

/// What a rank publishes before the Gloo connections: where it can be reached and on which host.
struct Peer {
  std::string identity, address;
  static Peer parse(const std::string& text) {
    const auto space = text.find(' ');
    return {text.substr(0, space), space == std::string::npos ? "" : text.substr(space + 1)};
  }
  std::string to_string() const { return identity + " " + address; }
};

c10::intrusive_ptr<c10d::TCPStore> open_store(const Rendezvous& r, bool server) {
  c10d::TCPStoreOptions options;
  options.port = static_cast<uint16_t>(r.master_port);
  options.isServer = server;
  options.numWorkers = static_cast<size_t>(r.world_size);
  options.waitWorkers = false;  // each rank waits for the others itself, to name the one missing
  options.timeout = std::chrono::seconds(r.timeout_s);
  return c10::make_intrusive<c10d::TCPStore>(r.master_addr, options);
}

}  // namespace

ProcessGroup::ProcessGroup(const Rendezvous& r) : rendezvous_(r), impl_(std::make_unique<Impl>()) {
  r.validate();
  const auto deadline = Clock::now() + std::chrono::seconds(r.timeout_s);
  const std::string where = r.master_addr + ":" + std::to_string(r.master_port);
  const std::string me = "rank " + std::to_string(r.rank) + "/" + std::to_string(r.world_size);
  const std::string timeout = std::to_string(r.timeout_s) + " s";

  // 1. The address the others reach this rank at: never the hostname's, which
  // is loopback on most Debian hosts and containers.
  std::vector<std::string> master_addresses;
  try {
    master_addresses = resolve_host(r.master_addr);
    if (r.interfaces.empty()) {
      address_ = address_towards(r.master_addr);
      address_source_ = "the route to the master";
    } else {
      for (const auto& iface : r.interfaces) interface_address(iface);  // each must exist
      address_ = interface_address(r.interfaces.front());
      address_source_ = "interface " + r.interfaces.front();
    }
  } catch (const Error& e) {
    throw Error(me + ": " + e.what(), e.hint());
  }
  const bool master_on_loopback = is_loopback_address(master_addresses.front());
  const std::string name_interface =
      "name the interface that reaches the other hosts: --dist-iface IFACE or GLOO_SOCKET_IFNAME=IFACE";
  const std::string fix = name_interface + " (here: " + describe_interfaces() + ")";
  // The store lives in rank 0: when it goes away before the deadline, rank 0 stopped.
  const auto store_closed = [&](const std::string& while_doing) {
    return Error(me + ": the rendezvous at " + where + " closed while this rank " + while_doing +
                     ": rank 0, which holds it, stopped",
                 "read rank 0's error");
  };
  if (is_loopback_address(address_) && !master_on_loopback)
    throw Error(me + ": would give the other ranks the loopback address " + address_ + " (from " + address_source_ +
                    "), which they cannot reach: the master " + r.master_addr + " is on another host",
                fix);

  // 2. The rendezvous: every rank publishes where it is and waits for the others by name.
  try {
    impl_->store = open_store(r, r.rank == 0);
  } catch (const std::exception& e) {
    const std::string what = e.what();
    if (r.rank == 0 && what.find("ddress already in use") != std::string::npos)
      throw Error(me + ": port " + std::to_string(r.master_port) + " on " + r.master_addr + " is already in use",
                  "choose another --master-port (or MASTER_PORT)");
    throw Error(me + ": no rendezvous at " + where + " within " + timeout,
                r.rank == 0 ? "every rank must start and reach --master-addr:--master-port"
                            : "start rank 0 there, or check --master-addr and --master-port");
  }
  auto& store = *impl_->store;
  std::vector<Peer> peers(static_cast<size_t>(r.world_size));
  try {
    peers[r.rank] = {network_identity(), address_};
    store.set(rank_key("peer", r.rank), bytes_of(peers[r.rank].to_string()));
  } catch (const std::exception& e) {
    throw Error(me + ": lost the rendezvous at " + where + " (" + e.what() + ")");
  }
  for (int64_t k = 0; k < r.world_size; ++k) {
    if (k == r.rank) continue;
    try {
      store.wait({rank_key("peer", k)}, left_until(deadline));
      peers[k] = Peer::parse(text_of(store.get(rank_key("peer", k))));
    } catch (const std::exception&) {
      if (Clock::now() + std::chrono::milliseconds(500) < deadline)  // not a timeout: the store went away
        throw store_closed("waited for rank " + std::to_string(k));
      throw Error(
          me + ": rank " + std::to_string(k) + " did not reach the rendezvous at " + where + " within " + timeout,
          "start rank " + std::to_string(k) + " with --rank " + std::to_string(k) + " --world-size " +
              std::to_string(r.world_size) + " --master-addr " + r.master_addr + " --master-port " +
              std::to_string(r.master_port) + ", or read its error");
    }
  }
  // A loopback address is only reachable from the same host (and network
  // namespace): every rank sees the same list, so all refuse together.
  for (int64_t k = 0; k < r.world_size; ++k) {
    if (!is_loopback_address(peers[k].address)) continue;
    for (int64_t j = 0; j < r.world_size; ++j)
      if (peers[j].identity != peers[k].identity)
        throw Error(me + ": rank " + std::to_string(k) + " gives the loopback address " + peers[k].address +
                        ", which rank " + std::to_string(j) + " on another host cannot reach",
                    "on rank " + std::to_string(k) + "'s host, " + name_interface);
  }

  // 3. The Gloo connections, in a thread of their own: Gloo's connect can wait
  // far past its timeout, and a peer's failure must stop this rank at once.
  auto options = c10d::ProcessGroupGloo::Options::create();
  options->timeout = std::chrono::seconds(r.timeout_s);
  try {
    if (r.interfaces.empty())
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(address_));
    else
      for (const auto& iface : r.interfaces)
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(iface));
  } catch (const std::exception& e) {
    throw Error(me + ": cannot listen on " + address_ + " (" + std::string(e.what()).substr(0, 200) + ")", fix);
  }
  struct Connecting {
    std::promise<c10::intrusive_ptr<c10d::ProcessGroupGloo>> promise;
    std::future<c10::intrusive_ptr<c10d::ProcessGroupGloo>> future = promise.get_future();
  };
  auto connecting = std::make_shared<Connecting>();
  std::thread([connecting, store = impl_->store, options, rank = r.rank, size = r.world_size] {
    try {
      connecting->promise.set_value(
          c10::make_intrusive<c10d::ProcessGroupGloo>(store, static_cast<int>(rank), static_cast<int>(size), options));
    } catch (...) {
      connecting->promise.set_exception(std::current_exception());
    }
  }).detach();  // left running only if it hangs past the deadline; the process is about to exit then
  // A second connection to the store watches the others while the first is Gloo's.
  c10::intrusive_ptr<c10d::TCPStore> watch;
  try {
    watch = open_store(r, false);
  } catch (const std::exception& e) {
    throw Error(me + ": lost the rendezvous at " + where + " (" + e.what() + ")");
  }
  const auto peer_name = [&](int64_t k) { return "rank " + std::to_string(k) + " (" + peers[k].address + ")"; };
  while (connecting->future.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
    try {
      for (int64_t k = 0; k < r.world_size; ++k)
        if (k != r.rank && watch->check({rank_key("failed", k)})) {
          const std::string why = text_of(watch->get(rank_key("failed", k)));
          watch->set(rank_key("saw-failure", r.rank), bytes_of("1"));  // rank 0 may stop now
          throw Error(me + ": " + peer_name(k) + " could not connect: " + why, fix);
        }
    } catch (const Error&) {
      throw;
    } catch (const std::exception&) {
      throw store_closed("connected");
    }
    if (Clock::now() >= deadline) {
      std::string missing;
      try {
        for (int64_t k = 0; k < r.world_size; ++k)
          if (k != r.rank && !watch->check({rank_key("connected", k)}))
            missing += (missing.empty() ? "" : ", ") + peer_name(k);
      } catch (const std::exception&) {
        throw store_closed("connected");
      }
      throw Error(me + " at " + address_ + ": no connection with " + (missing.empty() ? "the others" : missing) +
                      " within " + timeout,
                  "every rank's address must be reachable from every other rank; " + fix);
    }
  }
  try {
    impl_->group = connecting->future.get();
  } catch (const std::exception& e) {
    const std::string what = std::string(e.what()).substr(0, 300);
    try {  // tell the others at once; rank 0 holds the store, so it waits (briefly) until they have read it
      watch->set(rank_key("failed", r.rank), bytes_of(me + " at " + address_ + ": " + what));
      if (r.rank == 0) {
        std::vector<std::string> seen;
        for (int64_t k = 1; k < r.world_size; ++k) seen.push_back(rank_key("saw-failure", k));
        watch->wait(seen, std::min(left_until(deadline), std::chrono::milliseconds(3000)));
      }
    } catch (const std::exception&) {
    }
    std::string others;
    for (int64_t k = 0; k < r.world_size; ++k)
      if (k != r.rank) others += (others.empty() ? "" : ", ") + peer_name(k);
    throw Error(me + ": could not connect from " + address_ + " to " + others + " (" + what + ")", fix);
  }
  watch->set(rank_key("connected", r.rank), bytes_of(address_));
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
