#include "attach/detach.h"

#include "attach/iface_lock.h"
#include "attach/netif.h"
#include "attach/privileges.h"
#include "attach/tc_attach.h"
#include "util/error.h"
#include "util/log.h"

#include <optional>

namespace tcflows {
namespace {

// The lock of an interface, or nullopt (with a note) while an agent records
// there: what it holds is not ours to remove.
std::optional<InterfaceLock> lock_unless_live(const std::string &name) {
  try {
    return InterfaceLock(name);
  } catch (const Fatal &e) {
    log::info("left alone: {}", e.what());
    return std::nullopt;
  }
}

// Removes the filters tcflows left on one interface, and its lock file. The
// kernel frees the program and its maps with the last filter that runs it.
void detach_interface(const Interface &iface, InterfaceLock &lock) {
  int removed = detach_tcflows_filters(iface.ifindex, lock.qdisc_created());
  if (removed)
    log::info("removed {} tcflows filter{} from {}", removed, removed == 1 ? "" : "s", iface.name);
  lock.release();
}

} // namespace

int run_detach(const DetachOptions &options) {
  std::vector<Interface> ifaces;
  for (const auto &name : options.ifaces)
    ifaces.push_back(resolve_interface(name));
  require_capture_privileges();
  bool everything = ifaces.empty();
  if (everything)
    ifaces = all_interfaces();

  for (const auto &iface : ifaces) {
    // A named interface where an agent records is an error; in "everything", a note.
    auto lock = everything ? lock_unless_live(iface.name)
                           : std::optional<InterfaceLock>(InterfaceLock(iface.name));
    if (lock)
      detach_interface(iface, *lock);
  }
  return 0;
}

} // namespace tcflows
