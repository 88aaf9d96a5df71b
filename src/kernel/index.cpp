#include "kernel/index.h"

#include "kernel/conn_table.h"

extern "C" {
#include "key.h"
}

namespace tcflows {

uint64_t IndexView::load(size_t position) const {
  return shared(entries_[position & (entries_.size() - 1)]).load();
}

bool IndexView::reaches(const tcf_flow_key &key, uint32_t slot,
                        const std::function<bool(uint32_t)> &holds_key) const {
  auto first = find(key, [&](uint32_t named) { return named == slot || holds_key(named); });
  return first == slot; // not an earlier entry of the same key, which shadows it
}

std::optional<uint32_t> IndexView::find(const tcf_flow_key &key,
                                        const std::function<bool(uint32_t)> &holds_key) const {
  uint64_t digest = tcf_digest(&key, digest_mask_);
  uint32_t tag = TCF_DIGEST_TAG(digest), start = home(digest);
  for (uint32_t i = 0; i < TCF_PROBES; i++) {
    uint64_t e = load(start + i);
    if (!e)
      return std::nullopt;
    if (TCF_INDEX_SLOT(e) && TCF_INDEX_TAG(e) == tag && holds_key(TCF_INDEX_SLOT(e) - 1))
      return TCF_INDEX_SLOT(e) - 1;
  }
  return std::nullopt;
}

size_t IndexView::remove(const tcf_flow_key &key, uint32_t slot) {
  uint64_t digest = tcf_digest(&key, digest_mask_);
  uint32_t start = home(digest);
  size_t removed = 0;
  for (uint32_t i = 0; i < TCF_PROBES; i++) {
    uint64_t &entry = entries_[(start + i) & (entries_.size() - 1)];
    uint64_t e = shared(entry).load();
    if (!e)
      break;
    if (TCF_INDEX_SLOT(e) == slot + 1)
      removed += shared(entry).compare_exchange_strong(e, TCF_INDEX_TOMB);
  }
  return removed;
}

size_t IndexView::prune() {
  size_t n = entries_.size(), start = n;
  for (size_t i = 0; i < n; i++)
    if (!load(i)) {
      start = i;
      break;
    }
  if (start == n)
    return 0; // no empty entry: no run has an end to prune from
  // Backwards round the ring from an empty entry: a tombstone followed by an
  // empty entry ends its run.
  size_t pruned = 0;
  bool next_empty = true;
  for (size_t k = 1; k <= n; k++) {
    uint64_t &entry = entries_[(start + n - k) % n];
    uint64_t e = shared(entry).load();
    if (e == TCF_INDEX_TOMB && next_empty && shared(entry).compare_exchange_strong(e, 0)) {
      pruned++;
      continue; // now empty
    }
    next_empty = e == 0;
  }
  return pruned;
}

} // namespace tcflows
