// The agent's side of the connection table (bpf/conn.h, struct tcf_conn):
// reading the slots and the index, and what only user space does to them —
// sealing, waiting for programs in flight, removing index entries, freeing
// slots.
//
// An interface, so that the protocol tests can run the tracker against a
// model of the kernel that interleaves simulated CPUs at every step.
#pragma once

#include "kernel/abi.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>

namespace tcflows {

// Atomic access to a field of a slot or of the pool, shared with the program.
template <typename T> std::atomic_ref<T> shared(T &field) { return std::atomic_ref<T>(field); }

constexpr uint32_t slot_kind(uint32_t state) { return state & TCF_STATE_MASK; }
constexpr uint32_t slot_reason(uint32_t state) { return (state >> TCF_REASON_SHIFT) & 0xf; }
constexpr uint32_t slot_incarnation(uint32_t state) { return state >> TCF_INCARNATION_SHIFT; }

class ConnTable {
public:
  virtual ~ConnTable() = default;

  // Slots the conns array has, and how many of them (0 .. used()-1) the
  // program has taken at least once: only those can be in use.
  virtual uint32_t capacity() const = 0;
  virtual uint32_t used() const = 0;

  // Calls `visit(first, slots)` for consecutive runs of slots covering
  // [0, used()), in order; the slots are the program's memory.
  using Visit = std::function<void(uint32_t first, std::span<tcf_conn> slots)>;
  virtual void scan(const Visit &visit) = 0;
  // Calls `visit` with one slot (index below used()).
  virtual void with_slot(uint32_t index, const std::function<void(tcf_conn &)> &visit) = 0;

  // Returns once every program run that may have read a slot's state before
  // the call has ended: after it, a slot seen ENDED or SEALED no longer changes.
  virtual void synchronize() = 0;

  // The index the program probes (see kernel/index.h), in shared memory,
  // and the mask its flow digests are taken with.
  virtual std::span<uint64_t> index() = 0;
  virtual uint64_t digest_mask() const = 0;

  // Gives FREE slots back to the program.
  virtual void release(std::span<const uint32_t> slots) = 0;

  // The counters the program and user space share (free slots, the doorbell).
  virtual tcf_pool &pool() = 0;
};

class BpfProgram;

// The table of a loaded (or adopted) program.
std::unique_ptr<ConnTable> kernel_conn_table(const BpfProgram &program);

} // namespace tcflows
