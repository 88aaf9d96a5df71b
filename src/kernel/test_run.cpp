#include "kernel/test_run.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>

namespace tcflows {

int run_frame(const BpfProgram &program, std::span<const uint8_t> frame, uint64_t tstamp_ns,
              uint8_t hook) {
  __sk_buff ctx{};
  ctx.tstamp = tstamp_ns;
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
              .data_size_in = uint32_t(frame.size()), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
              .repeat = 1);
  int fd = hook == TCF_HOOK_EGRESS ? program.egress_fd() : program.ingress_fd();
  return bpf_prog_test_run_opts(fd, &opts);
}

} // namespace tcflows
