#include "kernel/proc_program.h"

#include "proc.skel.h"

#include "util/error.h"
#include "util/log.h"
#include <bpf/bpf.h>
#include <unistd.h>

#include <vector>

namespace tcflows {
namespace {

// Runs the iterator over every task's open files once: the sockets open now
// get the tasks holding them as owners. Its output is empty; reading it to
// the end runs it. On failure one line: recording goes on, those sockets
// wait to be used to be attributed.
void seed(bpf_program *program) {
  std::unique_ptr<bpf_link, decltype(&bpf_link__destroy)> link(
      bpf_program__attach_iter(program, nullptr), bpf_link__destroy);
  int fd = link ? bpf_iter_create(bpf_link__fd(link.get())) : -1;
  if (fd < 0) {
    log::warn("process attribution: the sockets open now are not seeded: {}", errno_text(errno));
    return;
  }
  char buf[64];
  while (::read(fd, buf, sizeof buf) > 0) {
  }
  ::close(fd);
}

} // namespace

void ProcProgram::Destroy::operator()(tcflows_proc_bpf *skel) const {
  tcflows_proc_bpf__destroy(skel);
}

ProcProgram::ProcProgram(std::unique_ptr<tcflows_proc_bpf, Destroy> skel)
    : skel_(std::move(skel)) {}
ProcProgram::ProcProgram(ProcProgram &&) noexcept = default;
ProcProgram &ProcProgram::operator=(ProcProgram &&) noexcept = default;
ProcProgram::~ProcProgram() = default;

std::optional<ProcProgram> ProcProgram::attach(uint32_t owners) {
  auto refuse = [](const char *step, int err) {
    log::warn("process attribution off: {} the socket tracing programs failed: {}", step,
              errno_text(err));
    return std::nullopt;
  };
  // Open the embedded object.
  std::unique_ptr<tcflows_proc_bpf, Destroy> skel(tcflows_proc_bpf__open());
  if (!skel)
    return refuse("opening", errno);
  // Configure: the size of the owners map; the seeding iterator runs once, below.
  if (int err = bpf_map__set_max_entries(skel->maps.owners, owners))
    return refuse("sizing", err);
  bpf_program__set_autoattach(skel->progs.tcf_seed, false);
  // Load: the verifier runs here.
  if (int err = tcflows_proc_bpf__load(skel.get()))
    return refuse("loading", err);
  // Attach to the tracepoints.
  if (int err = tcflows_proc_bpf__attach(skel.get()))
    return refuse("attaching", err);
  // Seed: the sockets open before the tracepoints were attached.
  seed(skel->progs.tcf_seed);
  return ProcProgram(std::move(skel));
}

std::optional<tcf_proc_owner> ProcProgram::lookup(const tcf_proc_key &key) const {
  tcf_proc_owner owner;
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.owners), &key, &owner))
    return std::nullopt;
  return owner;
}

ProcCounters ProcProgram::counters() const {
  static const int cpus = libbpf_num_possible_cpus();
  ProcCounters totals{};
  std::vector<uint64_t> per_cpu(cpus > 0 ? cpus : 1);
  for (uint32_t i = 0; i < TCF_PROC_CTR_MAX; i++) {
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.proc_counters), &i, per_cpu.data()))
      continue; // cannot fail on an array map: the index is in range
    for (uint64_t value : per_cpu)
      totals[i] += value;
  }
  return totals;
}

} // namespace tcflows
