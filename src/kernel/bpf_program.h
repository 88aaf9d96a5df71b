// The TC program and its maps: the embedded BPF object, configured and loaded.
#pragma once

#include "kernel/abi.h"
#include "kernel/program_maps.h"

#include <cstdint>
#include <memory>
#include <string>

struct tcflows_bpf;

namespace tcflows {

struct ProgramConfig {
  uint32_t max_flows = 65536;
  uint32_t ringbuf_bytes = 16u << 10; // a power of two, at least a page
  tcf_config kernel{};                // idle timeouts and flags for .rodata
  // Whether the TC hooks (ingress_fd, egress_fd) are loaded; reading a
  // capture in batches runs tcflows_read alone.
  bool hooks = true;
  // The maps of the program a killed agent left in the filters: reused, so
  // that a restarted agent adopts the counts of the one before. Null: new maps.
  const ProgramMaps *adopt = nullptr;
};

// Slots of the conns array for `max_flows` live connections: half as many
// again hold connections that ended until their records are written.
uint32_t slot_capacity(uint32_t max_flows);
// Entries of the index (a power of two).
uint32_t index_capacity(uint32_t max_flows);

class BpfProgram {
public:
  // Opens the embedded object, sets .rodata and map sizes, loads it.
  // Throws Fatal with a one-line reason; the verifier log goes to -v.
  static BpfProgram load(const ProgramConfig &config);

  BpfProgram(BpfProgram &&) noexcept;
  BpfProgram &operator=(BpfProgram &&) noexcept;
  ~BpfProgram();

  int ingress_fd() const; // -1 without ProgramConfig::hooks
  int egress_fd() const;
  // Offline: tcflows_read, which runs the frames of read_frames (read_batch() of them).
  int read_fd() const;
  int read_frames_fd() const;
  uint32_t read_batch() const;
  int conns_fd() const;
  int free_slots_fd() const;
  int index_fd() const;
  int pool_fd() const;
  int events_fd() const;
  int counters_fd() const;
  int frags_fd() const; // first fragments' ports; tests empty it between rows
  const tcf_config &kernel_config() const { return kernel_; }
  uint32_t max_flows() const { return max_flows_; }
  // Whether the maps were adopted from a program left in the filters.
  bool adopted() const { return adopted_; }

private:
  struct Destroy {
    void operator()(tcflows_bpf *skel) const;
  };
  BpfProgram(std::unique_ptr<tcflows_bpf, Destroy> skel, uint32_t max_flows, bool adopted,
             const tcf_config &kernel);

  std::unique_ptr<tcflows_bpf, Destroy> skel_;
  uint32_t max_flows_;
  bool adopted_;
  tcf_config kernel_;
};

} // namespace tcflows
