// The TC program's counters (enum tcf_counter in bpf/tcflows.h): one row per
// counter with everything user space says about it. The status line, the
// JSON snapshot, the Prometheus metrics (tcflows_kernel_<name>_total) and the
// database's counters table all read this table; a counter added to the enum
// gets a row here (the static_assert below fails until it has one).
#pragma once

#include "kernel/abi.h"

#include <array>
#include <cstdint>
#include <string_view>

namespace tcflows {

struct KernelCounter {
  int id;                // enum tcf_counter
  std::string_view name; // in the counters table, the JSON snapshot and the metric's name
  std::string_view help; // the metric's # HELP
  // Its place in the status line: a format with one {} for the value.
  // Counters with the same format are shown summed; "" when not shown.
  std::string_view status = "";
};

inline constexpr std::array<KernelCounter, TCF_CTR_MAX> kernel_counters{{
    {TCF_CTR_FRAMES, "frames", "Frames the TC program saw."},
    {TCF_CTR_GSO_FRAMES, "gso_frames", "Frames that were GSO/GRO super-packets."},
    {TCF_CTR_MALFORMED, "malformed", "Frames not attributed to a flow: malformed or truncated.",
     "malformed {}"},
    {TCF_CTR_MALFORMED_BYTES, "malformed_bytes", "Frame bytes of the malformed frames."},
    {TCF_CTR_MAL_L2, "malformed_l2", "Malformed frames: truncated Ethernet or VLAN header."},
    {TCF_CTR_MAL_IPV4, "malformed_ipv4",
     "Malformed frames: bad IPv4 version, IHL or total length."},
    {TCF_CTR_MAL_IPV6, "malformed_ipv6", "Malformed frames: bad IPv6 version or payload length."},
    {TCF_CTR_MAL_IPV6_EXT, "malformed_ipv6_ext",
     "Malformed frames: truncated or over-long IPv6 extension header chain."},
    {TCF_CTR_MAL_L4, "malformed_l4", "Malformed frames: truncated transport header."},
    {TCF_CTR_FLOW_FULL, "flow_full",
     "New connections not tracked: no free slot, or no free index entry within reach.",
     "not tracked {}"},
    {TCF_CTR_FLOW_ERROR, "flow_error",
     "New connections not tracked because a map lookup failed (never expected).", "not tracked {}"},
    {TCF_CTR_UNTRACKED_PKTS, "untracked_packets",
     "Wire packets of frames no connection took (counted nowhere else).", "untracked {} pkts"},
    {TCF_CTR_UNTRACKED_BYTES, "untracked_bytes", "Bytes of frames no connection took."},
    {TCF_CTR_FRAG_UNMATCHED, "frag_unmatched", "Non-first fragments counted as fragment flows."},
    {TCF_CTR_FRAG_TRACK_FAILED, "frag_track_failed",
     "First fragments the program could not remember."},
    {TCF_CTR_CONNECTIONS, "connections", "Connections the program started (slots taken)."},
    {TCF_CTR_PROBES, "index_probes",
     "Index entries packets passed over to reach their connection (long runs cost time)."},
    {TCF_CTR_RETRIES, "retries",
     "Packets that looked for their connection again because it changed while they looked."},
    {TCF_CTR_DOORBELLS, "doorbells",
     "Doorbells rung: free slots ran low and the agent was woken (ring-buffer events)."},
    {TCF_CTR_DOORBELLS_LOST, "doorbells_lost",
     "Doorbells the full ring buffer refused: the agent swept later, nothing was lost."},
}};

// Row i is counter i, and every counter has a row.
constexpr bool rows_in_order() {
  for (size_t i = 0; i < kernel_counters.size(); i++)
    if (kernel_counters[i].id != static_cast<int>(i) || kernel_counters[i].name.empty())
      return false;
  return true;
}
static_assert(rows_in_order(), "kernel_counters: one row per enum tcf_counter, in its order");

// The counters as read, summed over CPUs; indexed by enum tcf_counter.
using Counters = std::array<uint64_t, TCF_CTR_MAX>;

// The user-facing name of a counter ("malformed", "flow_full", ...).
constexpr std::string_view counter_name(int index) {
  return index >= 0 && index < TCF_CTR_MAX ? kernel_counters[index].name : "unknown";
}

} // namespace tcflows
