#include "was/distributed/network_address.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>

#include "was/core/error.h"

namespace was::distributed {
namespace {

std::string numeric(const sockaddr* sa) {
  char text[INET6_ADDRSTRLEN] = {0};
  if (sa->sa_family == AF_INET)
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, text, sizeof text);
  else if (sa->sa_family == AF_INET6)
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, text, sizeof text);
  return text;
}

struct IfAddrs {
  ifaddrs* list = nullptr;
  IfAddrs() {
    if (::getifaddrs(&list) != 0) list = nullptr;
  }
  ~IfAddrs() {
    if (list) ::freeifaddrs(list);
  }
};

/// Interfaces with an address, IPv4 addresses before IPv6 ones.
std::vector<std::pair<std::string, std::string>> addressed_interfaces() {
  std::vector<std::pair<std::string, std::string>> v4, v6;
  IfAddrs addrs;
  for (ifaddrs* a = addrs.list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || (a->ifa_flags & IFF_UP) == 0) continue;
    if (a->ifa_addr->sa_family == AF_INET) v4.emplace_back(a->ifa_name, numeric(a->ifa_addr));
    if (a->ifa_addr->sa_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a->ifa_addr);
      if (!IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr)) v6.emplace_back(a->ifa_name, numeric(a->ifa_addr));
    }
  }
  v4.insert(v4.end(), v6.begin(), v6.end());
  return v4;
}

}  // namespace

std::vector<std::string> split_interfaces(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = std::min(list.find(',', start), list.size());
    std::string name = list.substr(start, comma - start);
    const auto first = name.find_first_not_of(" \t"), last = name.find_last_not_of(" \t");
    if (first != std::string::npos) out.push_back(name.substr(first, last - first + 1));
    start = comma + 1;
  }
  return out;
}

bool is_loopback_address(const std::string& address) {
  in_addr v4{};
  if (::inet_pton(AF_INET, address.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, address.c_str(), &v6) == 1)
    return IN6_IS_ADDR_LOOPBACK(&v6) || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
  return false;
}

std::vector<std::string> resolve_host(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0)
    throw Error("master address '" + host + "' does not resolve (" + ::gai_strerror(rc) + ")",
                "pass --master-addr as rank 0's IP address or a name every host resolves");
  std::vector<std::string> v4, v6;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next)
    (a->ai_family == AF_INET ? v4 : v6).push_back(numeric(a->ai_addr));
  ::freeaddrinfo(found);
  v4.insert(v4.end(), v6.begin(), v6.end());
  return v4;
}

std::string interface_address(const std::string& name) {
  for (const auto& [iface, address] : addressed_interfaces())
    if (iface == name) return address;
  throw Error("network interface '" + name + "' does not exist here, is down or has no address",
              "name one of this host's interfaces in --dist-iface or GLOO_SOCKET_IFNAME: " + describe_interfaces());
}

std::string address_towards(const std::string& host) {
  const std::string target = resolve_host(host).front();
  sockaddr_storage to{};
  socklen_t to_len = 0;
  if (target.find(':') == std::string::npos) {
    auto* in = reinterpret_cast<sockaddr_in*>(&to);
    in->sin_family = AF_INET;
    in->sin_port = htons(9);  // any port: a UDP connect sends nothing
    ::inet_pton(AF_INET, target.c_str(), &in->sin_addr);
    to_len = sizeof(sockaddr_in);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&to);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(9);
    ::inet_pton(AF_INET6, target.c_str(), &in6->sin6_addr);
    to_len = sizeof(sockaddr_in6);
  }
  const int fd = ::socket(to.ss_family, SOCK_DGRAM, 0);
  sockaddr_storage from{};
  socklen_t from_len = sizeof from;
  const bool ok = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&to), to_len) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&from), &from_len) == 0;
  const int err = errno;
  if (fd >= 0) ::close(fd);
  if (!ok)
    throw Error("no route from this host to the master " + host + " (" + target + "): " + std::strerror(err),
                "check --master-addr, or name the interface that reaches it with --dist-iface");
  return numeric(reinterpret_cast<sockaddr*>(&from));
}

std::string describe_interfaces() {
  std::vector<std::pair<std::string, std::string>> merged;  // one entry per interface, its addresses joined
  for (const auto& entry : addressed_interfaces()) {        // no structured binding: C++17 lambdas cannot capture one
    const std::string& iface = entry.first;
    auto it = std::find_if(merged.begin(), merged.end(), [&](const auto& m) { return m.first == iface; });
    if (it == merged.end())
      merged.push_back(entry);
    else
      it->second += ", " + entry.second;
  }
  std::string out;
  for (const auto& [iface, addresses] : merged) out += (out.empty() ? "" : ", ") + iface + " (" + addresses + ")";
  return out.empty() ? "none with an address" : out;
}

std::string network_identity() {
  std::string boot;
  std::ifstream("/proc/sys/kernel/random/boot_id") >> boot;
  struct stat ns {};
  const auto netns = ::stat("/proc/self/ns/net", &ns) == 0 ? std::to_string(ns.st_ino) : std::string("?");
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + "/" + (boot.empty() ? "?" : boot) + "/" + netns;
}

}  // namespace was::distributed
