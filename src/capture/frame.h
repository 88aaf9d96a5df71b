// A captured frame as the TC program takes it: an Ethernet frame, its capture
// time, and the hook it would have passed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tcflows {

// What bpf_prog_test_run_opts copies into one page for an skb, less its
// headroom and the skb_shared_info at its end, and what a frame of the
// program's read_frames array holds (TCF_READ_FRAME_BYTES, asserted where
// both meet): longer frames run as their first max_run_frame bytes (their
// headers), and the program is told their whole length.
inline constexpr size_t max_run_frame = 3584;

struct CapturedFrame {
  uint64_t ts_ns = 0;        // capture time, Unix epoch ns
  std::vector<uint8_t> data; // Ethernet, at most max_run_frame bytes
  uint32_t length = 0;       // the whole frame's, as Ethernet: data.size(), or more when cut
  bool outgoing = false;     // sent by the capturing host (Linux cooked captures say so)
};

// Frames that were read but are not what was on the wire, or were not run.
struct CaptureStats {
  uint64_t files = 0;         // files opened
  uint64_t frames = 0;        // frames read
  uint64_t bad_frames = 0;    // too short for their link header, or of no known network type
  uint64_t cut_frames = 0;    // longer than a test run takes: run as their headers and length
  uint64_t padded_frames = 0; // cut by the capture's snap length: zeros up to their length
  uint64_t read_errors = 0;   // files that ended in an error (truncated, corrupt)
};

} // namespace tcflows
