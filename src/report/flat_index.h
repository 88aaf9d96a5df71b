// A hash table from keys to dense indices 0, 1, 2, ... in the order the keys
// were first seen: open addressing with linear probing, cleared at once.
// The report looks up every traffic row in a few of them; std::unordered_map
// allocates a node per key and chases pointers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <utility>
#include <vector>

namespace tcflows {

// Key: what is stored (std::deque: its elements stay where they are); View:
// what it is looked up by (a std::string_view for std::string keys).
template <typename Key, typename View = const Key &, typename Hash = std::hash<Key>>
class FlatIndex {
public:
  // The index of `key`, and whether it was added now.
  std::pair<uint32_t, bool> insert(View key) {
    if (2 * (keys_.size() + 1) > slots_.size())
      grow();
    auto hash = static_cast<uint32_t>(Hash()(key));
    size_t mask = slots_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      Slot &slot = slots_[i];
      if (slot.generation != generation_) {
        slot = {generation_, hash, static_cast<uint32_t>(keys_.size())};
        keys_.emplace_back(key);
        return {slot.index, true};
      }
      if (slot.hash == hash && keys_[slot.index] == key)
        return {slot.index, false};
    }
  }

  const Key &operator[](uint32_t index) const { return keys_[index]; }
  size_t size() const { return keys_.size(); }

  void clear() {
    keys_.clear();
    if (++generation_ == 0) { // after 2^32 clears: every slot could look used
      slots_.assign(slots_.size(), Slot{});
      generation_ = 1;
    }
  }

private:
  struct Slot {
    uint32_t generation = 0; // a slot of another generation is empty
    uint32_t hash = 0;
    uint32_t index = 0;
  };

  void grow() {
    std::vector<Slot> old(std::max<size_t>(256, 2 * slots_.size()));
    old.swap(slots_);
    size_t mask = slots_.size() - 1;
    for (const auto &slot : old)
      if (slot.generation == generation_) {
        size_t i = slot.hash & mask;
        while (slots_[i].generation == generation_)
          i = (i + 1) & mask;
        slots_[i] = slot;
      }
  }

  std::deque<Key> keys_;
  std::vector<Slot> slots_; // a power of two, at most half full
  uint32_t generation_ = 1;
};

} // namespace tcflows
