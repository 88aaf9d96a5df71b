#include "track/owner_cache.h"

#include <algorithm>
#include <functional>
#include <string_view>

namespace tcflows {

void OwnerCache::annotate(std::span<ConnUpdate> updates, const Find &find, const Counts &counts) {
  for (ConnUpdate &update : updates) {
    ConnRecord &record = update.record;
    auto known = owners_.find(record.uid);
    if (known != owners_.end()) {
      record.process = known->second;
    } else if (auto found = find(record)) {
      attributed_++;
      record.process = intern(*found);
      known = owners_.emplace(record.uid, record.process).first;
    } else if (update.final() && counts(record)) {
      unattributed_++;
    }
    if (update.final() && known != owners_.end())
      owners_.erase(known);
  }
}

size_t OwnerCache::OwnerHash::operator()(const ProcessOwner &o) const {
  return std::hash<uint64_t>()(uint64_t(o.pid) << 32 ^ o.cgroup_id) ^
         std::hash<std::string_view>()(o.comm());
}

SharedValue<ProcessOwner> OwnerCache::intern(const ProcessOwner &owner) {
  if (auto at = interned_.find(owner); at != interned_.end())
    return at->second;
  if (interned_.size() >= interned_limit_) { // drop those only this map holds
    std::erase_if(interned_, [](const auto &entry) { return entry.second.use_count() == 1; });
    interned_limit_ = std::max<size_t>(64, 2 * interned_.size());
  }
  return interned_.emplace(owner, owner).first->second;
}

void OwnerCache::annotate(std::span<ConnRecord> records) const {
  for (ConnRecord &record : records)
    if (auto known = owners_.find(record.uid); known != owners_.end())
      record.process = known->second;
}

} // namespace tcflows
