#include "kernel/test_run.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>

namespace tcflows {

int run_frame(int prog_fd, std::span<const uint8_t> frame, uint64_t tstamp_ns) {
  __sk_buff ctx{};
  ctx.tstamp = tstamp_ns;
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
              .data_size_in = uint32_t(frame.size()), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
              .repeat = 1);
  return bpf_prog_test_run_opts(prog_fd, &opts);
}

} // namespace tcflows
