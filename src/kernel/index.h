// The program's index (TCF_INDEX_* in bpf/tcflows.h) as user space reads and
// prunes it: the open-addressing table from flow key to slot that programs
// probe and fill. User space only ever turns an entry that still names a
// slot it finished into a tombstone, and a tombstone that ends a run back
// into an empty entry; both with a compare-and-swap on the shared memory.
#pragma once

#include "kernel/abi.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <span>

namespace tcflows {

class IndexView {
public:
  IndexView(std::span<uint64_t> entries, uint64_t digest_mask)
      : entries_(entries), digest_mask_(digest_mask) {}

  // Whether the program's lookup of `key` finds `slot`: the first entry on
  // the key's probe that names a slot of this key names it. `holds_key(s)`
  // tells whether slot s holds `key` (asked only for other slots whose
  // entries carry the key's tag).
  bool reaches(const tcf_flow_key &key, uint32_t slot,
               const std::function<bool(uint32_t)> &holds_key) const;

  // The slot the program's lookup of `key` finds, as reaches() decides.
  std::optional<uint32_t> find(const tcf_flow_key &key,
                               const std::function<bool(uint32_t)> &holds_key) const;

  // Turns every entry on the key's probe that names `slot` into a tombstone;
  // returns how many.
  size_t remove(const tcf_flow_key &key, uint32_t slot);

  // Turns the tombstones that end a run of entries back into empty ones (no
  // probe passes an empty entry, so no probe that reaches past them is
  // broken); returns how many.
  size_t prune();

  size_t size() const { return entries_.size(); }

private:
  uint64_t load(size_t position) const;
  uint32_t home(uint64_t digest) const { return uint32_t(digest) & uint32_t(entries_.size() - 1); }

  std::span<uint64_t> entries_;
  uint64_t digest_mask_;
};

} // namespace tcflows
