// Network interfaces: names, indexes, the default-route interface.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tcflows {

struct Interface {
  std::string name;
  int ifindex = 0;
  bool loopback = false;
};

// The interface called `name`; throws Fatal (usage) when there is none.
Interface resolve_interface(const std::string &name);

// The interface of the default route (IPv4, else IPv6), by lowest metric.
// Throws Fatal when the host has no default route.
Interface default_route_interface();

// The current name of an interface index, or "if<N>" when it is gone.
std::string interface_name(int ifindex);

// Every interface of the caller's network namespace.
std::vector<Interface> all_interfaces();

// The inode of the caller's network namespace (/proc/self/ns/net): the same
// for every process in it, whatever its mount namespace.
uint64_t netns_inode();

} // namespace tcflows
