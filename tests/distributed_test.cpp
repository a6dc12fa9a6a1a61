// Data-parallel training over c10d/Gloo on the loopback interface: ranks hold
// bit-identical weights, equal to one process on the same global batches; a
// dead rank stops the others within the timeout; bad configurations fail
// fast with a clear message.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <regex>
#include <set>
#include <thread>

#include "cli_fixture.h"
#include "free_port.h"
#include "was/core/error.h"
#include "was/distributed/network_address.h"
#include "was/io/checkpoint.h"

namespace {

namespace fs = std::filesystem;
using was::testing::CliTest;
using Clock = std::chrono::steady_clock;

struct DistributedTest : CliTest {
  /// Starts the tool as one rank in the background; output to NAME.out/.err.
  pid_t spawn_rank(const std::string& args, int rank, int world, int port, const std::string& name) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::setenv("RANK", std::to_string(rank).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      const std::string cmd = std::string(WAS_CLI_PATH) + " " + args + " >" + (dir / (name + ".out")).string() + " 2>" +
                              (dir / (name + ".err")).string();
      ::execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), static_cast<char*>(nullptr));
      std::_Exit(127);
    }
    return pid;
  }

  /// Waits up to `limit` for `pid`; returns its exit code, or -1 if it is still running.
  static int wait_for(pid_t pid, std::chrono::seconds limit) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid)
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }

  static int free_port() { return was::testing::free_loopback_port(); }

  static std::set<std::string> digests(const std::string& text) {
    std::set<std::string> out;
    const std::regex re("rank [0-9]+/[0-9]+: weights digest ([0-9a-f]{16})");
    for (std::sregex_iterator it(text.begin(), text.end(), re), end; it != end; ++it) out.insert((*it)[1]);
    return out;
  }

  /// Two runs' weights agree to float tolerance, after the same number of steps.
  static void expect_same_weights(const fs::path& one, const fs::path& two) {
    auto a = was::load_checkpoint((one / "last.pt").string());
    auto b = was::load_checkpoint((two / "last.pt").string());
    auto pb = b.network->module().named_parameters();
    for (const auto& item : a.network->module().named_parameters())
      EXPECT_TRUE(torch::allclose(item.value(), pb[item.key()], 1e-4, 1e-5)) << item.key();
    EXPECT_EQ(a.state.step, b.state.step);
    // The WAS draws agree too: otherwise the averaged gradient would not match one process's.
    EXPECT_EQ(a.state.policy, b.state.policy);
  }

  std::string training(const std::string& model, const std::string& out, int epochs = 2) {
    return "train --dataset synthetic --model " + model + " --was CT --epochs " + std::to_string(epochs) +
           " --batch-size 64 --bn-batches 1 --no-progress --out " + (dir / out).string();
  }
};

TEST_F(DistributedTest, TwoRanksMatchOneProcessOnTheSameGlobalBatches) {
  // Without BatchNorm a step does not depend on how the batch is split.
  const auto one = run(training("small_cnn_plain", "one") + " --threads 1");
  ASSERT_EQ(one.code, 0) << one.err;
  // Small buckets: several all-reduces, started while backward runs.
  const auto two = run(training("small_cnn_plain", "two") + " --nproc 2 --bucket-mb 0.05");
  ASSERT_EQ(two.code, 0) << two.err;
  const auto d = digests(two.err);
  ASSERT_EQ(std::count(two.err.begin(), two.err.end(), '\n') > 0, true);
  ASSERT_EQ(d.size(), 1u) << two.err;  // both ranks printed the same digest
  EXPECT_NE(two.err.find("rank 1/2: weights digest"), std::string::npos) << two.err;

  expect_same_weights(dir / "one", dir / "two");
}

TEST_F(DistributedTest, BatchNormRanksStayIdentical) {
  const auto two = run(training("small_cnn", "bn") + " --nproc 2");
  ASSERT_EQ(two.code, 0) << two.err;
  EXPECT_EQ(digests(two.err).size(), 1u) << two.err;
  EXPECT_EQ(run("check " + (dir / "bn").string() + " --threads 1").code, 0);
}

TEST_F(DistributedTest, ADeadRankStopsTheOthersWithinTheTimeout) {
  const int port = free_port();
  const std::string args = training("small_cnn", "killed", 400) + " --checkpoint-every 1 --threads 1 --dist-timeout 5";
  const pid_t r0 = spawn_rank(args, 0, 2, port, "rank0");
  const pid_t r1 = spawn_rank(args, 1, 2, port, "rank1");
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (!fs::exists(dir / "killed" / "last.pt") && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(fs::exists(dir / "killed" / "last.pt"));
  ::kill(r1, SIGKILL);
  const auto killed_at = Clock::now();
  const int code = wait_for(r0, std::chrono::seconds(40));
  if (code == -1) ::kill(r0, SIGKILL);
  wait_for(r1, std::chrono::seconds(5));
  EXPECT_NE(code, -1) << "rank 0 hung after its peer died";
  EXPECT_NE(code, 0);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - killed_at).count(), 30.0);
  const auto err = slurp(dir / "rank0.err");
  EXPECT_NE(err.find("error: rank 0"), std::string::npos) << err;
  // The last complete checkpoint loads.
  EXPECT_EQ(run("info " + (dir / "killed").string()).code, 0);
}

// A host with a stale copy of the run (or other flags) stops every rank at once, not in a hang.
TEST_F(DistributedTest, RanksOfDifferentRunsRefuseTogether) {
  const int port = free_port();
  const pid_t r0 = spawn_rank(training("small_cnn", "mixed", 2) + " --threads 1 --dist-timeout 20", 0, 2, port, "r0");
  const pid_t r1 = spawn_rank(training("small_cnn", "mixed-1", 3) + " --threads 1 --dist-timeout 20", 1, 2, port, "r1");
  const auto start = Clock::now();
  EXPECT_EQ(wait_for(r0, std::chrono::seconds(30)), 1);
  EXPECT_EQ(wait_for(r1, std::chrono::seconds(10)), 1);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 15.0);
  for (const char* name : {"r0.err", "r1.err"}) {
    const auto err = slurp(dir / name);
    EXPECT_NE(err.find("the ranks do not hold the same run"), std::string::npos) << err;
    EXPECT_NE(err.find("rank 0: epoch 0, step 0, 512 images in batches of 64, 2 epochs"), std::string::npos) << err;
  }
  EXPECT_FALSE(fs::exists(dir / "mixed" / "last.pt"));
}

TEST_F(DistributedTest, BadConfigurationsFailFast) {
  const std::string train = training("small_cnn", "bad", 1) + " --threads 1";
  expect_clean_failure(run(train + " --world-size 0"), "--world-size");
  expect_clean_failure(run(train + " --rank 2 --world-size 2"), "--rank 2");
  expect_clean_failure(run(train + " --nproc 2 --rank 1"), "--nproc");
  // A port someone else holds.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::listen(fd, 1);
  const int held = ntohs(addr.sin_port);
  expect_clean_failure(
      run(train + " --rank 0 --world-size 2 --master-port " + std::to_string(held) + " --dist-timeout 3"),
      "already in use");
  ::close(fd);
  // A master that never comes.
  const auto start = Clock::now();
  expect_clean_failure(
      run(train + " --rank 1 --world-size 2 --master-port " + std::to_string(free_port()) + " --dist-timeout 2"),
      "no rendezvous");
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 20.0);
  EXPECT_FALSE(fs::exists(dir / "bad" / "last.pt"));
}

}  // namespace

namespace {

/// Two "hosts": network namespaces joined by a veth pair, made by the test
/// and removed after it (as root, as CI is). Nothing else joins them, so the
/// traffic stays between the two.
struct TwoHostsTest : DistributedTest {
  std::string ns_a, ns_b, veth_a, veth_b, addr_a, addr_b;
  bool made = false;

  void SetUp() override {
    DistributedTest::SetUp();
    if (::geteuid() != 0) GTEST_SKIP() << "making network namespaces needs root (CI runs as root)";
    if (std::system("command -v ip >/dev/null 2>&1") != 0) GTEST_SKIP() << "no 'ip' command (iproute2)";
    const std::string id = std::to_string(::getpid() % 1000000);
    const std::string subnet = "10.77." + std::to_string(20 + ::getpid() % 200) + ".";
    ns_a = "was-a" + id, ns_b = "was-b" + id, veth_a = "wva" + id, veth_b = "wvb" + id;
    addr_a = subnet + "1", addr_b = subnet + "2";
    const std::string setup =
        "ip netns add " + ns_a + " && ip netns add " + ns_b + " && ip link add " + veth_a + " type veth peer name " +
        veth_b + " && ip link set " + veth_a + " netns " + ns_a + " && ip link set " + veth_b + " netns " + ns_b +
        " && ip -n " + ns_a + " addr add " + addr_a + "/24 dev " + veth_a + " && ip -n " + ns_b + " addr add " +
        addr_b + "/24 dev " + veth_b + " && ip -n " + ns_a + " link set " + veth_a + " up && ip -n " + ns_b +
        " link set " + veth_b + " up && ip -n " + ns_a + " link set lo up && ip -n " + ns_b + " link set lo up";
    made = std::system((setup + " 2>" + (dir / "netns.err").string()).c_str()) == 0;
    if (!made) {
      remove_namespaces();
      GTEST_SKIP() << "cannot make network namespaces here: " << slurp(dir / "netns.err");
    }
  }
  void TearDown() override {
    remove_namespaces();
    DistributedTest::TearDown();
  }
  void remove_namespaces() {
    if (!ns_a.empty())
      std::system(("ip netns del " + ns_a + " 2>/dev/null; ip netns del " + ns_b + " 2>/dev/null").c_str());
  }

  /// One rank in namespace `ns`, rank 0's host as the master; `env` goes before the command.
  pid_t spawn_in(const std::string& ns, const std::string& args, int rank, int port, const std::string& name,
                 const std::string& env = "") {
    const pid_t pid = ::fork();
    if (pid == 0) {
      const std::string cmd = (env.empty() ? "" : "env " + env) + " ip netns exec " + ns + " " + WAS_CLI_PATH + " " +
                              args + " --rank " + std::to_string(rank) + " --world-size 2 --master-addr " + addr_a +
                              " --master-port " + std::to_string(port) + " >" + (dir / (name + ".out")).string() +
                              " 2>" + (dir / (name + ".err")).string();
      ::execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), static_cast<char*>(nullptr));
      std::_Exit(127);
    }
    return pid;
  }

  /// Starts both ranks, waits for the first checkpoint, runs `disrupt`, and
  /// expects the ranks in `must_stop` to exit with an error within the timeout (plus slack).
  void expect_stop_after(const std::string& run_dir, const std::function<void(pid_t, pid_t)>& disrupt,
                         const std::vector<int>& must_stop) {
    const int port = 29600 + ::getpid() % 300;
    const std::string args = training("small_cnn", run_dir, 400) + " --checkpoint-every 1 --threads 1 --dist-timeout 5";
    const pid_t r0 = spawn_in(ns_a, args, 0, port, run_dir + "-rank0");
    const pid_t r1 = spawn_in(ns_b, args, 1, port, run_dir + "-rank1");
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (!fs::exists(dir / run_dir / "last.pt") && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_TRUE(fs::exists(dir / run_dir / "last.pt")) << slurp(dir / (run_dir + "-rank0.err"));
    disrupt(r0, r1);
    const auto at = Clock::now();
    const pid_t pids[2] = {r0, r1};
    for (int rank : must_stop) {
      const int code = wait_for(pids[rank], std::chrono::seconds(40));
      if (code == -1) ::kill(pids[rank], SIGKILL);
      EXPECT_NE(code, -1) << "rank " << rank << " hung";
      EXPECT_NE(code, 0) << "rank " << rank;
      EXPECT_NE(
          slurp(dir / (run_dir + "-rank" + std::to_string(rank) + ".err")).find("error: rank " + std::to_string(rank)),
          std::string::npos);
    }
    EXPECT_LT(std::chrono::duration<double>(Clock::now() - at).count(), 5.0 + 15.0);
    for (pid_t p : pids) {
      ::kill(p, SIGKILL);
      wait_for(p, std::chrono::seconds(5));
    }
    EXPECT_EQ(run("check " + (dir / run_dir).string() + " --threads 1").code, 0) << "the checkpoint is damaged";
  }
};

TEST_F(TwoHostsTest, TwoHostsMatchOneProcessOnTheSameGlobalBatches) {
  const auto one = run(training("small_cnn_plain", "one") + " --threads 1");
  ASSERT_EQ(one.code, 0) << one.err;
  const int port = 29600 + ::getpid() % 300;
  // Rank 0 finds its address by the route to the master; rank 1 is told its interface as PyTorch users do.
  const std::string args = training("small_cnn_plain", "two") + " --threads 1 --dist-timeout 30";
  const pid_t r0 = spawn_in(ns_a, args, 0, port, "rank0");
  const pid_t r1 = spawn_in(ns_b, training("small_cnn_plain", "rank1-own-dir") + " --threads 1 --dist-timeout 30", 1,
                            port, "rank1", "GLOO_SOCKET_IFNAME=" + veth_b);
  const int c0 = wait_for(r0, std::chrono::seconds(120)), c1 = wait_for(r1, std::chrono::seconds(10));
  const auto err0 = slurp(dir / "rank0.err"), err1 = slurp(dir / "rank1.err");
  ASSERT_EQ(c0, 0) << err0;
  ASSERT_EQ(c1, 0) << err1;
  EXPECT_NE(err0.find("rank 0/2: connected at " + addr_a + " (the route to the master)"), std::string::npos) << err0;
  EXPECT_NE(err1.find("rank 1/2: connected at " + addr_b + " (interface " + veth_b + ")"), std::string::npos) << err1;
  EXPECT_EQ(digests(err0 + err1).size(), 1u) << err0 << err1;
  EXPECT_FALSE(fs::exists(dir / "rank1-own-dir")) << "only rank 0 writes; the other hosts need no run directory";
  expect_same_weights(dir / "one", dir / "two");
}

TEST_F(TwoHostsTest, ALoopbackAddressForAnotherHostIsRefusedAndNamed) {
  const int port = 29600 + ::getpid() % 300;
  const std::string args = training("small_cnn", "lo", 1) + " --threads 1 --dist-timeout 4";
  const auto start = Clock::now();
  const pid_t r0 = spawn_in(ns_a, args, 0, port, "rank0");
  const pid_t r1 = spawn_in(ns_b, args + " --dist-iface lo", 1, port, "rank1");
  EXPECT_EQ(wait_for(r1, std::chrono::seconds(20)), 1);
  const auto err1 = slurp(dir / "rank1.err");
  EXPECT_NE(err1.find("rank 1/2: would give the other ranks the loopback address 127.0.0.1"), std::string::npos)
      << err1;
  EXPECT_NE(err1.find("--dist-iface IFACE or GLOO_SOCKET_IFNAME=IFACE (here: "), std::string::npos) << err1;
  EXPECT_NE(err1.find(veth_b + " (" + addr_b + ")"), std::string::npos) << err1;
  // Rank 0 gives up within the timeout, naming the rank it waited for.
  EXPECT_EQ(wait_for(r0, std::chrono::seconds(30)), 1);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 4.0 + 15.0);
  const auto err0 = slurp(dir / "rank0.err");
  EXPECT_NE(err0.find("rank 0/2: rank 1 did not reach the rendezvous at " + addr_a), std::string::npos) << err0;
  EXPECT_FALSE(fs::exists(dir / "lo" / "last.pt"));
  // An interface this host does not have is named with those it has.
  expect_clean_failure(run("train --dataset synthetic --model small_cnn --epochs 1 --world-size 2 --rank 1 "
                           "--master-addr 127.0.0.1 --dist-iface no-such0 --out " +
                           (dir / "x").string()),
                       "network interface 'no-such0' does not exist here");
}

TEST_F(TwoHostsTest, AKilledRankStopsTheOtherHostWithTheCheckpointIntact) {
  expect_stop_after("killed", [](pid_t, pid_t r1) { ::kill(r1, SIGKILL); }, {0});
}

TEST_F(TwoHostsTest, ALinkDownMidTrainingStopsBothAndTheRunResumes) {
  expect_stop_after(
      "cut", [&](pid_t, pid_t) { std::system(("ip -n " + ns_b + " link set " + veth_b + " down").c_str()); }, {0, 1});
  ASSERT_EQ(std::system(("ip -n " + ns_b + " link set " + veth_b + " up").c_str()), 0);
  // Both hosts resume the run from its checkpoint and finish it.
  const auto before = was::load_checkpoint((dir / "cut" / "last.pt").string()).state.epoch;
  const int port = 29600 + ::getpid() % 300 + 1;
  const std::string resume = "train --resume " + (dir / "cut").string() + " --epochs " + std::to_string(before + 2) +
                             " --threads 1 --no-progress --dist-timeout 20";
  const pid_t r0 = spawn_in(ns_a, resume, 0, port, "resume0");
  const pid_t r1 = spawn_in(ns_b, resume, 1, port, "resume1");
  EXPECT_EQ(wait_for(r0, std::chrono::seconds(60)), 0) << slurp(dir / "resume0.err");
  EXPECT_EQ(wait_for(r1, std::chrono::seconds(10)), 0) << slurp(dir / "resume1.err");
  EXPECT_EQ(was::load_checkpoint((dir / "cut" / "last.pt").string()).state.epoch, before + 2);
}

}  // namespace

namespace {

TEST(NetworkAddress, InterfacesLoopbackAndRoutes) {
  using namespace was::distributed;
  EXPECT_EQ(split_interfaces("eth0, eth1,,"), (std::vector<std::string>{"eth0", "eth1"}));
  EXPECT_TRUE(split_interfaces("").empty());
  for (const char* lo : {"127.0.0.1", "127.0.1.1", "::1", "::ffff:127.0.0.1"})
    EXPECT_TRUE(is_loopback_address(lo)) << lo;
  for (const char* other : {"10.77.0.1", "192.168.1.2", "::ffff:10.0.0.1", "fe80::1", "not-an-address"})
    EXPECT_FALSE(is_loopback_address(other)) << other;
  // The route to a local master leaves through loopback; lo always has 127.0.0.1.
  EXPECT_EQ(address_towards("127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(interface_address("lo"), "127.0.0.1");
  EXPECT_NE(describe_interfaces().find("lo (127.0.0.1"), std::string::npos) << describe_interfaces();
  try {
    interface_address("no-such0");
    ADD_FAILURE() << "an unknown interface was accepted";
  } catch (const was::Error& e) {
    EXPECT_NE(std::string(e.hint()).find("lo (127.0.0.1"), std::string::npos) << e.hint();
  }
  EXPECT_THROW(resolve_host("no-such-host.invalid"), was::Error);
  EXPECT_NE(network_identity(), "");
}

}  // namespace
