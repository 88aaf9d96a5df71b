#include "attach/netif.h"

#include "util/error.h"
#include "util/fd.h"

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

namespace tcflows {
namespace {

bool is_loopback(const std::string &name) {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq request{};
  std::strncpy(request.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (!sock || ::ioctl(sock.get(), SIOCGIFFLAGS, &request) < 0)
    return false;
  return request.ifr_flags & IFF_LOOPBACK;
}

struct Route {
  std::string iface;
  unsigned long metric = std::numeric_limits<unsigned long>::max();
};

// /proc/net/route: Iface Destination Gateway Flags RefCnt Use Metric Mask ...
Route ipv4_default_route() {
  std::ifstream in("/proc/net/route");
  std::string line;
  Route best;
  std::getline(in, line); // header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string iface, dest, gateway, flags, refcnt, use, mask;
    unsigned long metric;
    if (fields >> iface >> dest >> gateway >> flags >> refcnt >> use >> metric >> mask &&
        dest == "00000000" && mask == "00000000" && metric < best.metric)
      best = {iface, metric};
  }
  return best;
}

// /proc/net/ipv6_route: dest plen src splen nexthop metric refcnt use flags iface
Route ipv6_default_route() {
  std::ifstream in("/proc/net/ipv6_route");
  std::string line;
  Route best;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string dest, plen, src, splen, nexthop, metric_hex, refcnt, use, flags, iface;
    if (!(fields >> dest >> plen >> src >> splen >> nexthop >> metric_hex >> refcnt >> use >>
          flags >> iface))
      continue;
    unsigned long metric = std::stoul(metric_hex, nullptr, 16);
    if (dest == std::string(32, '0') && plen == "00" && iface != "lo" && metric < best.metric)
      best = {iface, metric};
  }
  return best;
}

} // namespace

Interface resolve_interface(const std::string &name) {
  unsigned index = if_nametoindex(name.c_str());
  if (index == 0)
    fail(exit_usage, "unknown interface '{}': name one that `ip link` lists", name);
  return {name, static_cast<int>(index), is_loopback(name)};
}

Interface default_route_interface() {
  Route route = ipv4_default_route();
  if (route.iface.empty())
    route = ipv6_default_route();
  if (route.iface.empty())
    fail(exit_usage, "this host has no default route: name an interface with -i");
  return resolve_interface(route.iface);
}

std::string interface_name(int ifindex) {
  char name[IF_NAMESIZE];
  if (if_indextoname(static_cast<unsigned>(ifindex), name))
    return name;
  return "if" + std::to_string(ifindex);
}

std::vector<Interface> all_interfaces() {
  std::vector<Interface> ifaces;
  struct if_nameindex *list = ::if_nameindex();
  for (struct if_nameindex *i = list; i && i->if_index; i++)
    ifaces.push_back({i->if_name, static_cast<int>(i->if_index), is_loopback(i->if_name)});
  if_freenameindex(list);
  return ifaces;
}

uint64_t netns_inode() {
  struct stat st {};
  if (::stat("/proc/self/ns/net", &st) != 0)
    fail(exit_failure, "cannot read /proc/self/ns/net: {}", errno_text(errno));
  return st.st_ino;
}

} // namespace tcflows
