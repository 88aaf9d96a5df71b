#include "kernel/bpf_program.h"

#include "tcflows.skel.h"
#include "util/error.h"
#include "util/log.h"

#include <algorithm>
#include <bit>
#include <string_view>

namespace tcflows {

uint32_t slot_capacity(uint32_t max_flows) { return max_flows + max_flows / 2; }

uint32_t index_capacity(uint32_t max_flows) {
  // At most half full with live connections: probes stay short.
  return std::bit_ceil(2 * slot_capacity(max_flows));
}

namespace {

// Frames in the read_frames array: a batch offline, one (unused) live.
uint32_t frames_read_at_once(const tcf_config &kernel) {
  return (kernel.flags & TCF_CFG_SKB_TSTAMP) ? TCF_READ_BATCH : 1;
}

// The option that sets a map's size, for the one line that says what to use.
const char *size_option(const std::string &map) {
  if (map == "conns" || map == "free_slots" || map == "conn_index")
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

// Every map but the internal ones (.rodata: each program has its own config)
// and read_frames, which only tcflows_read uses: the hooks left in the
// filters do not hold it, and a live agent never runs it.
void reuse_maps(bpf_object *object, const ProgramMaps &left) {
  bpf_map *map;
  bpf_object__for_each_map(map, object) {
    if (!bpf_map__is_internal(map) && std::string_view(bpf_map__name(map)) != "read_frames")
      reuse_map(map, left);
  }
}

} // namespace

void BpfProgram::Destroy::operator()(tcflows_bpf *skel) const { tcflows_bpf__destroy(skel); }

BpfProgram::BpfProgram(std::unique_ptr<tcflows_bpf, Destroy> skel, uint32_t max_flows, bool adopted,
                       const tcf_config &kernel)
    : skel_(std::move(skel)), max_flows_(max_flows), adopted_(adopted), kernel_(kernel) {}
BpfProgram::BpfProgram(BpfProgram &&) noexcept = default;
BpfProgram &BpfProgram::operator=(BpfProgram &&) noexcept = default;
BpfProgram::~BpfProgram() = default;

BpfProgram BpfProgram::load(const ProgramConfig &config) {
  // Open the embedded object.
  std::unique_ptr<tcflows_bpf, Destroy> skel(tcflows_bpf__open());
  if (!skel)
    fail(exit_failure, "cannot open the embedded BPF object: {}", errno_text(errno));

  // Configure: .rodata and map sizes.
  tcf_config kernel = config.kernel;
  uint32_t slots = slot_capacity(config.max_flows);
  uint32_t entries = index_capacity(config.max_flows);
  kernel.slots = slots;
  kernel.index_mask = entries - 1;
  if (!kernel.digest_mask)
    kernel.digest_mask = ~0ull;
  if (!kernel.bell_below)
    kernel.bell_below = std::clamp<uint32_t>(slots / 16, 256, 16384);
  skel->rodata->tcf_cfg = kernel;
  int err = bpf_map__set_max_entries(skel->maps.conns, slots);
  err = err ? err : bpf_map__set_max_entries(skel->maps.free_slots, slots);
  err = err ? err : bpf_map__set_max_entries(skel->maps.conn_index, entries);
  err = err ? err : bpf_map__set_max_entries(skel->maps.events, config.ringbuf_bytes);
  err = err ? err : bpf_map__set_max_entries(skel->maps.read_frames, frames_read_at_once(kernel));
  if (err)
    fail(exit_usage, "cannot size the BPF maps: {}", errno_text(err));
  bpf_program__set_autoload(skel->progs.tcflows_ingress, config.hooks);
  bpf_program__set_autoload(skel->progs.tcflows_egress, config.hooks);
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
  return BpfProgram(std::move(skel), config.max_flows, config.adopt != nullptr, kernel);
}

int BpfProgram::ingress_fd() const { return bpf_program__fd(skel_->progs.tcflows_ingress); }
int BpfProgram::egress_fd() const { return bpf_program__fd(skel_->progs.tcflows_egress); }
int BpfProgram::read_fd() const { return bpf_program__fd(skel_->progs.tcflows_read); }
int BpfProgram::read_frames_fd() const { return bpf_map__fd(skel_->maps.read_frames); }
uint32_t BpfProgram::read_batch() const { return frames_read_at_once(kernel_); }
int BpfProgram::conns_fd() const { return bpf_map__fd(skel_->maps.conns); }
int BpfProgram::free_slots_fd() const { return bpf_map__fd(skel_->maps.free_slots); }
int BpfProgram::index_fd() const { return bpf_map__fd(skel_->maps.conn_index); }
int BpfProgram::pool_fd() const { return bpf_map__fd(skel_->maps.pool); }
int BpfProgram::events_fd() const { return bpf_map__fd(skel_->maps.events); }
int BpfProgram::counters_fd() const { return bpf_map__fd(skel_->maps.counters); }
int BpfProgram::frags_fd() const { return bpf_map__fd(skel_->maps.frags); }

} // namespace tcflows
