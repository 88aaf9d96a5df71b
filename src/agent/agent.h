// The recording agent: one Asio loop that drives the tracker from the ring
// buffer and periodic sweeps of the maps, and hands records to the outputs.
#pragma once

#include "agent/options.h"
#include "kernel/bpf_program.h"
#include "kernel/event_source.h"
#include "sinks/interfaces.h"
#include "sinks/live_table.h"
#include "sinks/metrics.h"
#include "sinks/outputs.h"
#include "sinks/stats.h"
#include "track/tracker.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <optional>

namespace tcflows {

class Attachments;

class Agent {
public:
  Agent(boost::asio::io_context &io, boost::asio::signal_set &signals, const BpfProgram &program,
        const RecordOptions &options, Attachments &attachments, Outputs &outputs);

  // Arms the event reader, the timers and the signal handler. On a stop
  // signal, `detach` runs first, so that the final records hold everything
  // counted.
  void start(std::function<void()> detach);

private:
  void on_event(const tcf_event &event);
  void tick();
  void sweep();
  void show();
  void stop(int signal);
  void arm_timer();
  void deliver(std::vector<ConnUpdate> updates);
  // The statistics snapshot; `for_metrics` adds what only the metrics show
  // (open connections by state, the process's CPU and memory).
  Stats stats(bool for_metrics = false) const;
  InterfacesSnapshot interfaces() const;

  const BpfProgram &program_;
  const RecordOptions &options_;
  Attachments &attachments_;
  Outputs &outputs_;
  Tracker tracker_;
  EventSource events_;
  LiveTable live_;
  std::optional<MetricsServer> metrics_;
  boost::asio::steady_timer timer_;
  std::chrono::steady_clock::time_point next_flush_;
  boost::asio::signal_set &signals_;
  std::function<void()> detach_;
  size_t flows_in_map_ = 0;
};

} // namespace tcflows
