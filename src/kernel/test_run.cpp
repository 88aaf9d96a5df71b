#include "kernel/test_run.h"

#include "kernel/abi.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>

namespace tcflows {

int run_frame(int prog_fd, std::span<const uint8_t> frame, uint32_t length, uint64_t tstamp_ns) {
  __sk_buff ctx{};
  ctx.tstamp = tstamp_ns;
  if (length > frame.size()) // a test run's skb is at most a page: the program gets the length
    ctx.cb[TCF_CB_FRAME_LEN] = length;
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
              .data_size_in = uint32_t(frame.size()), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
              .repeat = 1);
  return bpf_prog_test_run_opts(prog_fd, &opts);
}

} // namespace tcflows
