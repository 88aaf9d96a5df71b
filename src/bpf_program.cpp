#include "bpf_program.h"

#include "error.h"
#include "log.h"
#include "tcflows.skel.h"

#include <algorithm>

namespace tcflows {

uint32_t ended_capacity(uint32_t max_flows) { return std::max<uint32_t>(4096, max_flows / 4); }

void BpfProgram::Destroy::operator()(tcflows_bpf *skel) const { tcflows_bpf__destroy(skel); }

BpfProgram::BpfProgram(std::unique_ptr<tcflows_bpf, Destroy> skel, uint32_t max_flows)
    : skel_(std::move(skel)), max_flows_(max_flows) {}
BpfProgram::BpfProgram(BpfProgram &&) noexcept = default;
BpfProgram &BpfProgram::operator=(BpfProgram &&) noexcept = default;
BpfProgram::~BpfProgram() = default;

BpfProgram BpfProgram::load(const ProgramConfig &config) {
  // Open the embedded object.
  std::unique_ptr<tcflows_bpf, Destroy> skel(tcflows_bpf__open());
  if (!skel)
    fail(exit_failure, "cannot open the embedded BPF object: {}", errno_text(errno));

  // Configure: .rodata and map sizes.
  skel->rodata->tcf_cfg = config.kernel;
  int err = bpf_map__set_max_entries(skel->maps.flows, config.max_flows);
  err = err ? err : bpf_map__set_max_entries(skel->maps.ended, ended_capacity(config.max_flows));
  err = err ? err : bpf_map__set_max_entries(skel->maps.events, config.ringbuf_bytes);
  if (err)
    fail(exit_usage, "cannot size the BPF maps: {}", errno_text(err));

  // Load: the verifier runs here.
  err = tcflows_bpf__load(skel.get());
  if (err) {
    std::string hint =
        log::level() >= log::Level::debug ? "" : " (run with -v for the verifier log)";
    if (err == -EPERM || err == -EACCES)
      hint += "; tcflows needs root (CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON)";
    fail(exit_failure, "loading the BPF program failed: {}{}", errno_text(err), hint);
  }
  return BpfProgram(std::move(skel), config.max_flows);
}

int BpfProgram::ingress_fd() const { return bpf_program__fd(skel_->progs.tcflows_ingress); }
int BpfProgram::egress_fd() const { return bpf_program__fd(skel_->progs.tcflows_egress); }
int BpfProgram::flows_fd() const { return bpf_map__fd(skel_->maps.flows); }
int BpfProgram::ended_fd() const { return bpf_map__fd(skel_->maps.ended); }
int BpfProgram::events_fd() const { return bpf_map__fd(skel_->maps.events); }
int BpfProgram::counters_fd() const { return bpf_map__fd(skel_->maps.counters); }
int BpfProgram::frags_fd() const { return bpf_map__fd(skel_->maps.frags); }

} // namespace tcflows
