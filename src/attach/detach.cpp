#include "attach/detach.h"

#include "attach/iface_lock.h"
#include "attach/netif.h"
#include "attach/privileges.h"
#include "attach/tc_attach.h"
#include "kernel/pins.h"
#include "util/error.h"
#include "util/log.h"

#include <net/if.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <sstream>

namespace tcflows {
namespace {

std::vector<Interface> all_interfaces() {
  std::vector<Interface> ifaces;
  struct if_nameindex *list = ::if_nameindex();
  for (struct if_nameindex *i = list; i && i->if_index; i++)
    ifaces.push_back(resolve_interface(i->if_name));
  if_freenameindex(list);
  return ifaces;
}

// Whether the pin directory of a recording covers one of these interfaces.
bool covers(const std::string &dir, const std::vector<Interface> &ifaces) {
  std::stringstream names(std::filesystem::path(dir).filename().string());
  std::string name;
  while (std::getline(names, name, '+'))
    if (std::any_of(ifaces.begin(), ifaces.end(), [&](auto &i) { return i.name == name; }))
      return true;
  return false;
}

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

// Removes the filters tcflows left on one interface.
void detach_interface(const Interface &iface, InterfaceLock &lock) {
  int removed = detach_tcflows_filters(iface.ifindex, lock.qdisc_created());
  if (removed)
    log::info("removed {} tcflows filter{} from {}", removed, removed == 1 ? "" : "s", iface.name);
  lock.release();
}

// Removes a recording's pins, unless an agent still records on one of its interfaces.
void remove_pins(const std::string &dir) {
  std::vector<InterfaceLock> locks;
  std::stringstream names(std::filesystem::path(dir).filename().string());
  std::string name;
  while (std::getline(names, name, '+')) {
    auto lock = lock_unless_live(name);
    if (!lock)
      return;
    locks.push_back(std::move(*lock));
  }
  if (remove_pin_dir(dir))
    log::info("removed {}", dir);
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
  ensure_bpffs();
  for (const auto &dir : pin_dirs())
    if (everything || covers(dir, ifaces))
      remove_pins(dir);
  std::error_code ignored;
  std::filesystem::remove(pin_root, ignored); // only when empty
  return 0;
}

} // namespace tcflows
