// A recording that a killed agent left attached: its filters run on, and
// their program keeps counting into its maps while no agent runs. A restarted
// agent on the same interfaces takes the maps over (found from the filters
// themselves: filter, program id, map ids) and swaps its program into them.
#pragma once

#include "attach/netif.h"
#include "attach/tc_attach.h"
#include "kernel/program_maps.h"

#include <optional>
#include <vector>

namespace tcflows {

struct LeftRecording {
  ProgramMaps maps;               // the recording's maps
  std::vector<uint32_t> prog_ids; // the programs its filters run
};

// tcflows' filters (at the priority and handle of `options`) on the hooks of
// `ifaces`, and their maps; nullopt when there are none. Throws Fatal when
// they count into more than one set of maps, or when one of them also counts
// an interface that is not in `ifaces` (its counts would be taken up by a
// recording that does not own it).
std::optional<LeftRecording> find_left_recording(const std::vector<Interface> &ifaces,
                                                 const TcOptions &options);

} // namespace tcflows
