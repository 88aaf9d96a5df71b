#include "kernel/bpf_program.h"

#include "tcflows.skel.h"
#include "util/error.h"
#include "util/log.h"

#include <algorithm>

namespace tcflows {

uint32_t ended_capacity(uint32_t max_flows) { return std::max<uint32_t>(4096, max_flows / 4); }

namespace {

// The option that sets a map's size, for the one line that says what to use.
const char *size_option(const std::string &map) {
  if (map == "flows")
    return "--max-flows";
  return map == "events" ? "--ringbuf-size" : nullptr;
}

// One map of ours takes over the kernel map of the same name, which must
// have been made for the same layout and size.
void reuse_map(bpf_map *map, const ProgramMaps &left) {
  std::string name = bpf_map__name(map);
  const KernelMap *found = left.find(name);
  if (!found || found->type != bpf_map__type(map) || found->key_size != bpf_map__key_size(map) ||
      found->value_size != bpf_map__value_size(map))
    fail(exit_failure,
         "the tcflows program left attached (id {}) is of another version (its map '{}' "
         "differs): run `tcflows detach` to drop it and start afresh",
         left.prog_id(), name);
  const char *option = size_option(name);
  if (found->max_entries != bpf_map__max_entries(map) && option)
    fail(exit_usage,
         "the recording left attached was started with {} {}: restart with that value, or run "
         "`tcflows detach` to drop it and start afresh",
         option, found->max_entries);
  if (found->max_entries != bpf_map__max_entries(map))
    fail(exit_failure,
         "the tcflows program left attached (id {}) is of another version (its map '{}' has "
         "{} entries): run `tcflows detach` to drop it and start afresh",
         left.prog_id(), name, found->max_entries);
  if (int err = bpf_map__reuse_fd(map, found->fd.get()))
    fail(exit_failure, "cannot reuse map '{}' of program {}: {}", name, left.prog_id(),
         errno_text(err));
}

// Every map but the internal ones (.rodata: each program has its own config).
void reuse_maps(bpf_object *object, const ProgramMaps &left) {
  bpf_map *map;
  bpf_object__for_each_map(map, object) {
    if (!bpf_map__is_internal(map))
      reuse_map(map, left);
  }
}

} // namespace

void BpfProgram::Destroy::operator()(tcflows_bpf *skel) const { tcflows_bpf__destroy(skel); }

BpfProgram::BpfProgram(std::unique_ptr<tcflows_bpf, Destroy> skel, uint32_t max_flows, bool adopted)
    : skel_(std::move(skel)), max_flows_(max_flows), adopted_(adopted) {}
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
  // Adopt the maps of the program left in the filters, if any.
  if (config.adopt)
    reuse_maps(skel->obj, *config.adopt);

  // Load: the verifier runs here.
  err = tcflows_bpf__load(skel.get());
  if (err) {
    std::string hint =
        log::level() >= log::Level::debug ? "" : " (run with -v for the verifier log)";
    if (err == -EPERM || err == -EACCES)
      hint += "; tcflows needs root (CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON)";
    fail(exit_failure, "loading the BPF program failed: {}{}", errno_text(err), hint);
  }
  return BpfProgram(std::move(skel), config.max_flows, config.adopt != nullptr);
}

int BpfProgram::ingress_fd() const { return bpf_program__fd(skel_->progs.tcflows_ingress); }
int BpfProgram::egress_fd() const { return bpf_program__fd(skel_->progs.tcflows_egress); }
int BpfProgram::flows_fd() const { return bpf_map__fd(skel_->maps.flows); }
int BpfProgram::ended_fd() const { return bpf_map__fd(skel_->maps.ended); }
int BpfProgram::events_fd() const { return bpf_map__fd(skel_->maps.events); }
int BpfProgram::counters_fd() const { return bpf_map__fd(skel_->maps.counters); }
int BpfProgram::frags_fd() const { return bpf_map__fd(skel_->maps.frags); }

} // namespace tcflows
