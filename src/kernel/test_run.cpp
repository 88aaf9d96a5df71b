#include "kernel/test_run.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>

#include <algorithm>
#include <cstring>

namespace tcflows {

namespace {

size_t mapped_bytes(uint32_t frames) {
  size_t bytes = size_t(frames) * sizeof(tcf_read_frame);
  return (bytes + 4095) / 4096 * 4096;
}

} // namespace

FrameBatch::FrameBatch(const BpfProgram &program)
    : prog_fd_(program.read_fd()), capacity_(program.read_batch()),
      frames_(program.read_frames_fd(), 0, mapped_bytes(capacity_), "frames to read") {}

void FrameBatch::add(std::span<const uint8_t> frame, uint32_t length, uint64_t tstamp_ns,
                     uint8_t hook, uint32_t ifindex) {
  auto &slot = static_cast<tcf_read_frame *>(frames_.get())[count_++];
  uint32_t caplen = uint32_t(std::min<size_t>(frame.size(), TCF_READ_FRAME_BYTES));
  slot.tstamp = tstamp_ns;
  slot.len = std::max(length, caplen);
  slot.caplen = caplen;
  slot.hook = hook;
  slot.ifindex = ifindex;
  std::memcpy(slot.data, frame.data(), caplen);
}

int FrameBatch::run(uint32_t *retval) {
  if (count_ == 0)
    return 0;
  // tcflows_read does not read its own frame, but a test run needs one.
  uint8_t frame[ETH_HLEN] = {};
  __sk_buff ctx{};
  ctx.cb[TCF_CB_READ_FRAMES] = count_;
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = sizeof(frame),
              .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1);
  count_ = 0;
  int err = bpf_prog_test_run_opts(prog_fd_, &opts);
  if (retval)
    *retval = opts.retval;
  return err;
}

} // namespace tcflows
