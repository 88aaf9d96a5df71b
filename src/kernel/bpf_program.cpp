#include "kernel/bpf_program.h"

#include "kernel/pins.h"
#include "tcflows.skel.h"
#include "util/error.h"
#include "util/log.h"

#include <algorithm>
#include <bit>
#include <filesystem>

namespace tcflows {

uint32_t slot_capacity(uint32_t max_flows) { return max_flows + max_flows / 2; }

uint32_t index_capacity(uint32_t max_flows) {
  // At most half full with live connections: probes stay short.
  return std::bit_ceil(2 * slot_capacity(max_flows));
}

namespace {

// Pinned maps are reused only with the sizes they were made with.
void check_pinned_sizes(const std::string &dir, const ProgramConfig &config) {
  struct Expect {
    const char *map;
    uint32_t size;
    const char *option;
  };
  for (const auto &e : {Expect{"conns", slot_capacity(config.max_flows), "--max-flows"},
                        Expect{"events", config.ringbuf_bytes, "--ringbuf-size"}}) {
    uint32_t pinned = pinned_map_size(dir, e.map);
    if (pinned && pinned != e.size)
      fail(exit_usage,
           "the recording kept in {} was started with {} {}: restart with that value, or run "
           "`tcflows detach` to drop it and start afresh",
           dir, e.option, pinned);
  }
}

// Maps pin (or are reused) at load; returns whether the flow map was adopted.
bool set_pin_paths(tcflows_bpf *skel, const std::string &dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error)
    fail(exit_failure, "cannot create {}: {}", dir, error.message());
  for (bpf_map *map : {skel->maps.conns, skel->maps.free_slots, skel->maps.conn_index,
                       skel->maps.pool, skel->maps.events, skel->maps.counters, skel->maps.frags}) {
    std::string path = dir + "/" + bpf_map__name(map);
    if (int err = bpf_map__set_pin_path(map, path.c_str()))
      fail(exit_failure, "cannot pin {}: {}", path, errno_text(err));
  }
  return pinned_map_size(dir, "conns") != 0;
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
  if (err)
    fail(exit_usage, "cannot size the BPF maps: {}", errno_text(err));
  bool adopted = false;
  if (!config.pin_dir.empty()) {
    check_pinned_sizes(config.pin_dir, config);
    adopted = set_pin_paths(skel.get(), config.pin_dir);
  }

  // Load: the verifier runs here.
  err = tcflows_bpf__load(skel.get());
  if (err) {
    std::string hint =
        log::level() >= log::Level::debug ? "" : " (run with -v for the verifier log)";
    if (err == -EPERM || err == -EACCES)
      hint += "; tcflows needs root (CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON)";
    fail(exit_failure, "loading the BPF program failed: {}{}", errno_text(err), hint);
  }
  // Pin the programs too: the TC filters keep running them with no agent.
  // Adopting, the pins keep naming the programs the filters run until the
  // attach swaps ours in (commit_staged_pins); ours wait under staged names.
  if (!config.pin_dir.empty()) {
    auto name = [adopted](const char *hook) { return adopted ? staged(hook) : hook; };
    pin_program(bpf_program__fd(skel->progs.tcflows_ingress), config.pin_dir, name("ingress"));
    pin_program(bpf_program__fd(skel->progs.tcflows_egress), config.pin_dir, name("egress"));
  }
  return BpfProgram(std::move(skel), config.max_flows, adopted, kernel);
}

int BpfProgram::ingress_fd() const { return bpf_program__fd(skel_->progs.tcflows_ingress); }
int BpfProgram::egress_fd() const { return bpf_program__fd(skel_->progs.tcflows_egress); }
int BpfProgram::conns_fd() const { return bpf_map__fd(skel_->maps.conns); }
int BpfProgram::free_slots_fd() const { return bpf_map__fd(skel_->maps.free_slots); }
int BpfProgram::index_fd() const { return bpf_map__fd(skel_->maps.conn_index); }
int BpfProgram::pool_fd() const { return bpf_map__fd(skel_->maps.pool); }
int BpfProgram::events_fd() const { return bpf_map__fd(skel_->maps.events); }
int BpfProgram::counters_fd() const { return bpf_map__fd(skel_->maps.counters); }
int BpfProgram::frags_fd() const { return bpf_map__fd(skel_->maps.frags); }

} // namespace tcflows
