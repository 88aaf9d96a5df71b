// The owner of each connection (track/process.h), kept from the update that
// first found one to the connection's final update: a process that exited,
// or whose entry the kernel's map dropped, keeps its name in the
// connection's later records.
#pragma once

#include "track/conn.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <unordered_map>

namespace tcflows {

class OwnerCache {
public:
  // The owner of a record's connection as the kernel's map has it now.
  using Find = std::function<std::optional<ProcessOwner>(const ConnRecord &)>;
  // Whether a final record without an owner counts as unattributed.
  using Counts = std::function<bool(const ConnRecord &)>;

  // Gives each update's record its connection's owner: the one kept, else
  // find()'s (asked at every update until it finds one). A final record's
  // connection is forgotten.
  void annotate(std::span<ConnUpdate> updates, const Find &find, const Counts &counts);
  // The owners kept, for records of open connections (the live table).
  void annotate(std::span<ConnRecord> records) const;

  uint64_t attributed() const { return attributed_; }     // connections given an owner
  uint64_t unattributed() const { return unattributed_; } // final, counted, without one
  size_t size() const { return owners_.size(); }          // connections kept
  size_t interned() const { return interned_.size(); }    // owners kept, shared by those

private:
  // The one shared owner of every connection of a process.
  SharedValue<ProcessOwner> intern(const ProcessOwner &owner);

  struct OwnerHash {
    size_t operator()(const ProcessOwner &o) const;
  };
  std::unordered_map<Uid, SharedValue<ProcessOwner>, UidHash> owners_;
  std::unordered_map<ProcessOwner, SharedValue<ProcessOwner>, OwnerHash> interned_;
  size_t interned_limit_ = 64; // when to drop the owners no connection holds
  uint64_t attributed_ = 0;
  uint64_t unattributed_ = 0;
};

} // namespace tcflows
