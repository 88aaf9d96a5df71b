// A frame run through the loaded program without a device
// (bpf_prog_test_run_opts): how captures are read offline. The program must
// be loaded with TCF_CFG_SKB_TSTAMP, so that the frame's time is its packet
// clock.
#pragma once

#include <cstdint>
#include <span>

namespace tcflows {

// Runs `frame` (Ethernet) on `prog_fd`, the program's ingress or egress
// function (BpfProgram::ingress_fd, egress_fd: looked up once, not a frame),
// at packet time `tstamp_ns`. A frame longer than `frame` (cut to the bytes
// a test run takes) says its whole `length` to the program. Returns 0, or
// the negative errno of a run the kernel refused.
int run_frame(int prog_fd, std::span<const uint8_t> frame, uint32_t length, uint64_t tstamp_ns);

} // namespace tcflows
