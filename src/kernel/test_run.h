// A frame run through the loaded program without a device
// (bpf_prog_test_run_opts): how captures are read offline. The program must
// be loaded with TCF_CFG_SKB_TSTAMP, so that the frame's time is its packet
// clock.
#pragma once

#include "kernel/bpf_program.h"

#include <cstdint>
#include <span>

namespace tcflows {

// Runs `frame` (Ethernet) on the ingress or egress program (`hook`, enum
// tcf_hook) at packet time `tstamp_ns`. Returns 0, or the negative errno of
// a run the kernel refused.
int run_frame(const BpfProgram &program, std::span<const uint8_t> frame, uint64_t tstamp_ns,
              uint8_t hook);

} // namespace tcflows
