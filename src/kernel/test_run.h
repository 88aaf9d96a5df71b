// Frames run through the loaded program without a device
// (bpf_prog_test_run_opts): how captures are read offline. The program must
// be loaded with TCF_CFG_SKB_TSTAMP, so that a frame's time is its packet
// clock and tcflows_read runs its loop.
#pragma once

#include "kernel/abi.h"
#include "kernel/bpf_program.h"
#include "kernel/mapping.h"

#include <cstdint>
#include <span>

namespace tcflows {

// Frames run a batch at a time: written into the program's read_frames array
// through a mapping, then one test run of tcflows_read counts them all, in
// order. A test run costs microseconds; the frames, a few hundred
// nanoseconds each.
class FrameBatch {
public:
  explicit FrameBatch(const BpfProgram &program);

  bool empty() const { return count_ == 0; }
  uint32_t size() const { return count_; }
  bool full() const { return count_ == capacity_; }
  // Adds a frame (not when full): Ethernet, its first TCF_READ_FRAME_BYTES
  // bytes at most, `length` the whole frame's.
  void add(std::span<const uint8_t> frame, uint32_t length, uint64_t tstamp_ns, uint8_t hook,
           uint32_t ifindex);
  // Runs the frames added since the last run. Returns 0, or the negative
  // errno of a run the kernel refused (the batch is dropped then); the
  // program's verdict goes to `retval` when given.
  int run(uint32_t *retval = nullptr);

private:
  int prog_fd_;
  uint32_t capacity_;
  uint32_t count_ = 0;
  Mapping frames_;
};

} // namespace tcflows
