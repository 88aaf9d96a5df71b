// The kernel side of the connection protocol for tests: bpf/conn.h — the
// very code the TC program runs — compiled against maps kept here, and run
// by simulated CPUs that a test interleaves step by step. Every access conn.h
// makes to shared memory is a step (named, for scripts); the agent's
// operations (ConnTable) happen between steps, and hooks let a test run CPU
// steps in the middle of the agent's work. ConnTable::synchronize runs every
// CPU to the end of its packet, as an RCU grace period does.
//
#pragma once

#include "kernel/conn_table.h"
#include "kernel/maps.h"
#include "keys.h"
#include "track/flow.h"

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace model {

constexpr uint64_t sec = 1'000'000'000;
constexpr uint64_t ms = 1'000'000;
constexpr uint64_t us = 1'000;

// TCP flags as on the wire.
constexpr uint8_t FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10;

// A packet as sent: key side 0 is the sender.
struct Packet {
  tcf_flow_key key{};
  uint8_t tcp_flags = 0;
  uint32_t bytes = 40; // IP bytes
  bool data = false;
  uint32_t seq = 0;
  uint8_t icmp_type = 0;
  uint8_t icmp_code = 0;
  bool egress = false;
  // TCP health (added after the fields the tests initialise by position)
  uint32_t ack = 0;
  uint32_t payload = 100;  // payload bytes, when data
  uint16_t window = 65535; // unscaled
};

// A simulated CPU: runs one packet at a time on a thread of its own, which
// stops before every shared access until the test lets it go on.
class Cpu {
public:
  Cpu() = default;
  ~Cpu();
  Cpu(const Cpu &) = delete;
  Cpu &operator=(const Cpu &) = delete;

  // Starts `work`, stopped before its first step.
  void start(std::function<void()> work);
  // Lets it take `n` steps (fewer when it ends first).
  void step(int n = 1);
  // Runs it until it stops before a step named `name` (or ends).
  void run_to(const std::string &name);
  void finish();
  bool busy() const;
  // The step it stopped before ("" when idle).
  std::string next() const;

  // Called by the work, on the CPU's thread, before each step.
  void yield(const char *name);

private:
  void wait_stopped(std::unique_lock<std::mutex> &lock);

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::thread thread_;
  int credits_ = 0;
  bool stopped_ = true; // waiting for credit, or done
  bool done_ = true;
  std::string next_;
};

// The maps, counters and clocks of one loaded program.
struct Kernel {
  explicit Kernel(uint32_t slots = 64, size_t cpus = 2);

  tcf_config cfg{};
  std::vector<tcf_conn> conns;
  std::vector<uint64_t> index;      // 2^n entries, as conn_index
  std::vector<uint32_t> free_stack; // back = top
  tcf_pool pool{};
  tcflows::Counters counters{};
  uint64_t clock_ns = 1000 * sec;
  int ring_room = 1000; // doorbells the ring buffer still takes
  int doorbells = 0;
  std::vector<std::unique_ptr<Cpu>> cpus;

  // Index entries that name a slot.
  size_t mapped() const;

  // Moves the packet clock on.
  void advance(uint64_t ns);

  // Starts a packet on a CPU (stopped before its first step).
  void start(size_t cpu, const Packet &packet);
  // Runs a packet to its end on CPU 0.
  void send(const Packet &packet);
  void finish_all();
};

// The agent's side, on the model: what the tracker is tested against.
class Table final : public tcflows::ConnTable {
public:
  explicit Table(Kernel &k) : k_(k) {}

  // Called before the scan: scripts run CPU steps there.
  std::function<void()> before_scan;
  int synchronized = 0;

  uint32_t capacity() const override { return uint32_t(k_.conns.size()); }
  uint32_t used() const override { return std::min<uint32_t>(k_.pool.used, capacity()); }
  void scan(const Visit &visit) override;
  void with_slot(uint32_t index, const std::function<void(tcf_conn &)> &visit) override;
  void synchronize() override;
  std::span<uint64_t> index() override { return k_.index; }
  uint64_t digest_mask() const override { return k_.cfg.digest_mask; }
  void release(std::span<const uint32_t> slots) override;
  tcf_pool &pool() override { return k_.pool; }

private:
  Kernel &k_;
};

} // namespace model
