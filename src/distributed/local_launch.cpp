#include "was/distributed/local_launch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>

#include "was/core/error.h"

namespace was::distributed {

int64_t free_local_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw Error("could not find a free local port for the rendezvous", "pass --master-port");
  }
  const int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

void launch_local_ranks(const std::string& program, const std::vector<std::string>& args, int64_t nproc,
                        int64_t master_port) {
  if (nproc < 1) throw Error("--nproc must be at least 1, got " + std::to_string(nproc));
  std::vector<pid_t> pids;
  for (int64_t rank = 0; rank < nproc; ++rank) {
    const pid_t pid = ::fork();
    if (pid < 0) {
      for (const pid_t started : pids) ::kill(started, SIGTERM);
      throw Error("could not start rank " + std::to_string(rank) + ": fork failed");
    }
    if (pid == 0) {
      ::setenv("RANK", std::to_string(rank).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(master_port).c_str(), 1);
      std::vector<char*> argv;
      for (const auto& s : args) argv.push_back(const_cast<char*>(s.c_str()));
      argv.push_back(nullptr);
      ::execv(program.c_str(), argv.data());
      std::_Exit(127);
    }
    pids.push_back(pid);
  }
  std::string failure;
  size_t running = pids.size();
  while (running > 0) {
    int status = 0;
    const pid_t pid = ::wait(&status);
    if (pid < 0) break;
    --running;
    const auto rank = std::find(pids.begin(), pids.end(), pid) - pids.begin();
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok && failure.empty()) {
      failure = "rank " + std::to_string(rank) + " " +
                (WIFSIGNALED(status) ? "was killed by signal " + std::to_string(WTERMSIG(status))
                                     : "exited with status " + std::to_string(WEXITSTATUS(status)));
      for (size_t r = 0; r < pids.size(); ++r)
        if (pids[r] != pid) ::kill(pids[r], SIGTERM);  // the rest could only wait for it
    }
  }
  if (!failure.empty())
    throw Error("data-parallel training stopped: " + failure,
                "the last complete checkpoint is intact; fix the cause and restart with --resume");
}

}  // namespace was::distributed
