// The maps a loaded TC program uses, found from its program id: what a
// restarted agent reuses from the program a killed agent left running in a
// TC filter. The kernel keeps a program and its maps for as long as a filter
// runs it, so nothing needs to be pinned in bpffs.
#pragma once

#include "util/fd.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tcflows {

struct KernelMap {
  std::string name; // as the kernel keeps it (at most 15 characters)
  uint32_t id = 0;
  uint32_t type = 0;
  uint32_t key_size = 0;
  uint32_t value_size = 0;
  uint32_t max_entries = 0;
  UniqueFd fd;
};

class ProgramMaps {
public:
  // Opens the program `prog_id` and every map it uses. Throws Fatal when the
  // program is gone or may not be opened (that needs CAP_SYS_ADMIN).
  static ProgramMaps of_program(uint32_t prog_id);

  uint32_t prog_id() const { return prog_id_; }
  // The map called `name`, or nullptr.
  const KernelMap *find(std::string_view name) const;
  // Whether both programs use the same maps (by id), internal ones aside
  // (.rodata and the like: each program has its own): one recording's.
  bool same_maps(const ProgramMaps &other) const;

private:
  uint32_t prog_id_ = 0;
  std::vector<KernelMap> maps_;
};

} // namespace tcflows
