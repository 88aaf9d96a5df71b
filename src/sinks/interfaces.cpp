#include "sinks/interfaces.h"

#include <algorithm>

namespace tcflows {

InterfaceNames::InterfaceNames(std::vector<Entry> entries) : entries_(std::move(entries)) {
  std::sort(entries_.begin(), entries_.end(),
            [](const Entry &a, const Entry &b) { return a.ifindex < b.ifindex; });
}

const InterfaceNames::Entry *InterfaceNames::find(uint32_t ifindex) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), ifindex,
                             [](const Entry &e, uint32_t index) { return e.ifindex < index; });
  return it != entries_.end() && it->ifindex == ifindex ? &*it : nullptr;
}

std::string InterfaceNames::name_of(uint32_t ifindex) const {
  const Entry *entry = find(ifindex);
  return entry ? entry->name : "if" + std::to_string(ifindex);
}

bool InterfaceNames::is_loopback(uint32_t ifindex) const {
  const Entry *entry = find(ifindex);
  return entry && entry->loopback;
}

} // namespace tcflows
