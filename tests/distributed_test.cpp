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

  auto a = was::load_checkpoint((dir / "one" / "last.pt").string());
  auto b = was::load_checkpoint((dir / "two" / "last.pt").string());
  auto pb = b.network->module().named_parameters();
  for (const auto& item : a.network->module().named_parameters())
    EXPECT_TRUE(torch::allclose(item.value(), pb[item.key()], 1e-4, 1e-5)) << item.key();
  EXPECT_EQ(a.state.step, b.state.step);
  // The WAS draws agree too: otherwise the averaged gradient would not match one process's.
  EXPECT_EQ(a.state.policy, b.state.policy);
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
