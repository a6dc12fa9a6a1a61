// Which local address a rank gives the others to reach it. A hostname that
// resolves to loopback (Debian's /etc/hosts, most containers) must never be
// advertised to ranks on other hosts: the address comes from the interface the
// user names (--dist-iface, GLOO_SOCKET_IFNAME), else from the route to the
// master.
#pragma once

#include <string>
#include <vector>

namespace was::distributed {

/// "eth0,eth1" -> {"eth0", "eth1"}; blanks dropped.
std::vector<std::string> split_interfaces(const std::string& list);

/// Whether `address` (a numeric IPv4 or IPv6 address) is a loopback address.
bool is_loopback_address(const std::string& address);

/// The numeric addresses `host` resolves to (IPv4 first). Throws was::Error
/// naming `host` if it does not resolve.
std::vector<std::string> resolve_host(const std::string& host);

/// The first IPv4 (else IPv6) address of interface `name`. Throws was::Error
/// naming the interfaces there are if it does not exist or has no address.
std::string interface_address(const std::string& name);

/// The local address this host sends from to reach `host` (the routing
/// table's choice; nothing is sent). Throws was::Error if there is no route.
std::string address_towards(const std::string& host);

/// The interfaces here with an address, "lo (127.0.0.1), eth0 (10.0.0.2)".
std::string describe_interfaces();

/// Tells apart hosts and network namespaces: the kernel's boot id and this
/// process's network namespace. Two ranks with equal identities can reach
/// each other's loopback; two with different ones cannot.
std::string network_identity();

}  // namespace was::distributed
