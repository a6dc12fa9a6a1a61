// `was train --nproc N`'s launcher (was/distributed/local_launch.h): every
// rank sees its rendezvous, and one failing rank stops the others at once.
#include <gtest/gtest.h>

#include <chrono>

#include "expect_error.h"
#include "was/distributed/local_launch.h"

namespace {

TEST(LocalLaunchTest, EveryRankSeesItsRendezvous) {
  // Each rank checks its own environment; a wrong one exits non-zero and fails the launch.
  const std::string check =
      "test \"$WORLD_SIZE\" = 3 && test \"$MASTER_ADDR\" = 127.0.0.1 && test \"$MASTER_PORT\" = 4321 && "
      "case \"$RANK\" in 0|1|2) exit 0;; *) exit 9;; esac";
  EXPECT_NO_THROW(was::distributed::launch_local_ranks("/bin/sh", {"sh", "-c", check}, 3, 4321));
  const auto message = was::testing::error_of([&] {
    was::distributed::launch_local_ranks("/bin/sh", {"sh", "-c", check}, 3, 4322);
  });
  EXPECT_NE(message.find("exited with status 1"), std::string::npos) << message;
}

TEST(LocalLaunchTest, AFailingRankStopsTheOthersAndIsNamed) {
  const auto start = std::chrono::steady_clock::now();
  const auto message = was::testing::error_of([] {
    was::distributed::launch_local_ranks("/bin/sh", {"sh", "-c", "test \"$RANK\" = 2 && exit 3; exec sleep 60"}, 3,
                                         1234);
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(message.find("data-parallel training stopped: rank 2 exited with status 3"), std::string::npos) << message;
  EXPECT_LT(seconds, 30.0);  // the sleeping ranks were stopped, not waited for
}

TEST(LocalLaunchTest, FreeLocalPortIsAUsablePort) {
  const auto port = was::distributed::free_local_port();
  EXPECT_GT(port, 0);
  EXPECT_LT(port, 65536);
}

}  // namespace
