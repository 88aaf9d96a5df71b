// The interfaces a recording is attached to, kept attached: an interface that
// disappears is forgotten (its filters went with it) and re-attached when an
// interface of the same name comes back.
#pragma once

#include "attach/iface_lock.h"
#include "attach/link_monitor.h"
#include "attach/tc_attach.h"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace tcflows {

class Attachments {
public:
  struct Program {
    int ingress_fd;
    int egress_fd;
    TcOptions options;
  };

  // Attaches to every interface, replacing the filters of the programs in
  // `adoption` (what an earlier agent left). When one attach fails, the
  // filters attached before it go, but for those that replaced an earlier
  // agent's: they keep its maps for the next start.
  Attachments(Program program, const std::vector<Interface> &ifaces,
              std::vector<InterfaceLock> &locks, Adoption adoption);

  // A link notification: forget a vanished interface, re-attach a returned one.
  void on_link(const LinkChange &change);
  // The same, by looking the names up (catches lost notifications).
  void reconcile();
  void detach_all();

  // The name of an interface recorded on, also after it is gone.
  std::string name_of(uint32_t ifindex) const;
  // Every interface recorded on so far, by index (also those that are gone).
  const std::map<uint32_t, std::string> &names() const { return names_; }
  bool is_loopback(uint32_t ifindex) const { return loopbacks_.count(ifindex) != 0; }
  size_t configured() const { return slots_.size(); }

private:
  struct Slot {
    std::string name;
    InterfaceLock *lock;
    std::optional<InterfaceHook> hook;
  };
  void attach(Slot &slot, const Interface &iface, const Adoption &adoption);
  void lose(Slot &slot);

  Program program_;
  std::vector<Slot> slots_;
  std::map<uint32_t, std::string> names_;
  std::set<uint32_t> loopbacks_;
};

} // namespace tcflows
