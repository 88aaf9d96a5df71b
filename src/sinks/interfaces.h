// The names of the interfaces records come from, as the agent knew them when
// it handed a batch over. Records carry only the interface index; a sink
// prints the name from this table. It never changes once made, so the store's
// writer thread reads it while the loop goes on.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tcflows {

class InterfaceNames {
public:
  struct Entry {
    uint32_t ifindex = 0;
    std::string name;
    bool loopback = false; // only ingress is hooked there
  };

  InterfaceNames() = default;
  explicit InterfaceNames(std::vector<Entry> entries);

  // Its name; "if<N>" for an index not in the table.
  std::string name_of(uint32_t ifindex) const;
  bool is_loopback(uint32_t ifindex) const;

private:
  const Entry *find(uint32_t ifindex) const;
  std::vector<Entry> entries_; // by ifindex
};

// What the outputs are handed with each batch.
using InterfacesSnapshot = std::shared_ptr<const InterfaceNames>;

} // namespace tcflows
