// The recording agent: one Asio loop that sweeps the program's connection
// table (on a timer, and when the program rings its doorbell), hands the
// records to the outputs, and gives the slots of written records back.
#pragma once

#include "agent/options.h"
#include "agent/process_join.h"
#include "kernel/bpf_program.h"
#include "kernel/conn_table.h"
#include "kernel/doorbell.h"
#include "sinks/interfaces.h"
#include "sinks/live_table.h"
#include "sinks/metrics.h"
#include "sinks/outputs.h"
#include "sinks/stats.h"
#include "track/tracker.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <optional>

namespace tcflows {

class Attachments;

class Agent {
public:
  // `proc`: the socket tracing programs, none when they could not be attached.
  Agent(boost::asio::io_context &io, boost::asio::signal_set &signals, const BpfProgram &program,
        ConnTable &table, const RecordOptions &options, Attachments &attachments, Outputs &outputs,
        std::optional<ProcProgram> proc = std::nullopt);

  // Arms the doorbell, the timer and the signal handler. On a stop signal,
  // `detach` runs first, so that the final records hold everything counted.
  void start(std::function<void()> detach);

private:
  void tick(bool timer);
  void sweep(Checkpoint checkpoint, bool counters_row);
  void on_durable(uint64_t sequence);
  void show();
  void stop(int signal);
  void arm_timer();
  // The statistics snapshot; `for_metrics` adds what only the metrics show
  // (open connections by state, the process's CPU and memory).
  Stats stats(bool for_metrics = false) const;
  InterfacesSnapshot interfaces() const;
  // The tracker's updates, with their owners, to the outputs.
  void deliver(std::span<const ConnUpdate> chunk);

  const BpfProgram &program_;
  const RecordOptions &options_;
  Attachments &attachments_;
  Outputs &outputs_;
  Tracker tracker_;
  ProcessJoin join_;
  Doorbell doorbell_;
  LiveTable live_;
  std::optional<MetricsServer> metrics_;
  boost::asio::steady_timer timer_;
  std::chrono::steady_clock::time_point next_checkpoint_;
  std::chrono::steady_clock::time_point last_sweep_;
  boost::asio::signal_set &signals_;
  std::function<void()> detach_;
  // Sweeps whose records the outputs have not made durable yet: (the
  // outputs' interval, the sweep).
  std::deque<std::pair<uint64_t, uint64_t>> pending_;
  SweepResult last_;
  uint64_t sweep_us_ = 0;
  uint32_t shares_; // timer sweeps an --interval
  uint64_t ticks_ = 0;
};

} // namespace tcflows
