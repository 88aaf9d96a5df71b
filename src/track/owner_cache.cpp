#include "track/owner_cache.h"

namespace tcflows {

void OwnerCache::annotate(std::span<ConnUpdate> updates, const Find &find, const Counts &counts) {
  for (ConnUpdate &update : updates) {
    ConnRecord &record = update.record;
    auto known = owners_.find(record.uid);
    if (known != owners_.end()) {
      record.process = known->second;
    } else if ((record.process = find(record))) {
      attributed_++;
      known = owners_.emplace(record.uid, *record.process).first;
    } else if (update.final() && counts(record)) {
      unattributed_++;
    }
    if (update.final() && known != owners_.end())
      owners_.erase(known);
  }
}

void OwnerCache::annotate(std::span<ConnRecord> records) const {
  for (ConnRecord &record : records)
    if (auto known = owners_.find(record.uid); known != owners_.end())
      record.process = known->second;
}

} // namespace tcflows
