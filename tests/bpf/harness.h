// The loaded TC program driven through bpf_prog_test_run_opts, and what the
// tests read back: the connection table (slots and flow maps), the per-CPU
// counters, the doorbells.
#pragma once

#include "kernel/bpf_program.h"
#include "kernel/conn_table.h"
#include "kernel/maps.h"
#include "kernel/test_run.h"
#include "packet_builder.h"

#include <memory>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct ring_buffer;

namespace tcflows::test {

// The interface bpf_prog_test_run_opts runs frames on (loopback).
inline constexpr uint32_t test_ifindex = 1;

// A frame's metadata in the struct __sk_buff context.
struct RunOpts {
  uint8_t hook = TCF_HOOK_INGRESS;
  uint64_t tstamp = 0; // 0: the harness clock, 1 µs after the previous frame
  uint32_t gso_segs = 0;
  uint32_t gso_size = 0;
  uint32_t frame_len = 0; // cb[TCF_CB_FRAME_LEN]: a cut frame's whole length (offline only)
};

// A connection in the table: its slot and what the slot holds.
struct SlotEntry {
  uint32_t slot;
  tcf_flow_key key;
  tcf_conn val;
};

// The entry frames run through: the TC hooks (a test run of tcflows_ingress
// or tcflows_egress each), or tcflows_read as `tcflows read` runs captures
// (the frame written into read_frames, a test run of tcflows_read for it).
// TCF_TEST_ENTRY=read in the environment takes tcflows_read wherever a
// capture could have given the frame: a program loaded for offline reading
// (TCF_CFG_SKB_TSTAMP) and no GSO metadata.
enum class Entry { hooks, read };
Entry entry_from_environment();

// A small program: the skb timestamp as packet clock, a page of ring
// buffer, few flows.
ProgramConfig test_config(uint32_t max_flows = 256);

class Harness {
public:
  explicit Harness(const ProgramConfig &config = test_config());
  ~Harness();
  Harness(const Harness &) = delete;
  Harness &operator=(const Harness &) = delete;

  // Runs one frame; fails the test when test_run fails or the verdict is not
  // TC_ACT_UNSPEC. Returns the test_run error (0).
  int run(const Bytes &frame, RunOpts opts = {});
  // Runs one frame at opts.tstamp as it is, without checks: the test run's
  // error, and its verdict in `retval`.
  int run_unchecked(const Bytes &frame, const RunOpts &opts, uint32_t &retval);
  // The entry run() and run_unchecked() take for a frame with `opts`.
  Entry entry_for(const RunOpts &opts) const;
  // Sets the entry (the environment's at first); returns the one before.
  Entry set_entry(Entry entry) { return std::exchange(entry_, entry); }

  // The connections ACTIVE in the table: the current one of each key.
  std::vector<SlotEntry> flows() const;
  // The slot the key's mapping names, whatever its state.
  std::optional<tcf_conn> flow(const tcf_flow_key &key) const;
  // Connections the program ended (a new one started on their key).
  std::vector<SlotEntry> ended() const;
  Counters counters() const;
  // Doorbells rung since the last call.
  size_t doorbells();

  // Empties every map, zeroes the table and the counters, drops pending
  // doorbells and rewinds the clock: the state of a freshly loaded program
  // (without the verifier's cost), with `slots` slots left (all by default).
  void reset(uint32_t slots = UINT32_MAX);

  BpfProgram &program() { return program_; }
  ConnTable &table() { return *table_; }
  uint64_t clock() const { return clock_; }

private:
  std::vector<SlotEntry> slots_in(uint32_t kind) const;

  BpfProgram program_;
  Entry entry_;
  FrameBatch batch_;
  std::unique_ptr<ConnTable> table_;
  ring_buffer *ring_ = nullptr;
  size_t doorbells_ = 0;
  uint64_t clock_ = 1'000'000'000;
};

// One program with test_config(), loaded once and reset by each row.
Harness &shared_harness();

// Expected flow keys, endpoint 0 first exactly as given (the row states the
// canonical order: lower address, then lower port, first).
tcf_flow_key ip4_key(uint8_t proto, std::string_view a, uint16_t pa, std::string_view b,
                     uint16_t pb, uint8_t kind = TCF_KIND_PORTS);
tcf_flow_key ip6_key(uint8_t proto, std::string_view a, uint16_t pa, std::string_view b,
                     uint16_t pb, uint8_t kind = TCF_KIND_PORTS);
tcf_flow_key link_key(Mac a, Mac b, uint16_t ethertype, uint16_t saps = 0);
tcf_flow_key with_vlan(tcf_flow_key key, uint16_t outer, uint16_t inner = 0);

// "TCP 10.0.0.1:1234 10.0.0.2:80 vlan 0/0 kind 0 ifindex 1"
std::string describe(const tcf_flow_key &key);

// A flow the row expects, with its per-direction counters.
struct ExpectedFlow {
  tcf_flow_key key;
  std::array<uint64_t, 2> pkts;
  std::array<uint64_t, 2> bytes;
};

using CounterValues = std::vector<std::pair<tcf_counter, uint64_t>>;

// The frame counted as malformed for `reason`.
CounterValues malformed(tcf_counter reason, const Bytes &frame);

// Checks that the flow map holds exactly `flows` and that every counter other
// than frames and gso_frames has the value in `counters` (0 when absent).
void check_state(const Harness &h, const std::vector<ExpectedFlow> &flows,
                 const CounterValues &counters);

// A frame and how to run it.
struct Frame {
  Frame(Bytes data, RunOpts opts = {}) : data(std::move(data)), opts(opts) {}
  Bytes data;
  RunOpts opts;
};

// A fixture row: frames run in order on a freshly loaded program, then the
// whole map state and every counter are checked.
struct Row {
  std::string name;
  std::vector<Frame> frames;
  std::vector<ExpectedFlow> flows;
  CounterValues counters;
};

// Runs the row on `h` after a reset.
void check_row(const Row &row, Harness &h = shared_harness());

} // namespace tcflows::test
