// The recording agent: one Asio loop that drives the tracker from the ring
// buffer and periodic sweeps of the maps, and hands records to the sinks.
#pragma once

#include "agent/options.h"
#include "kernel/bpf_program.h"
#include "kernel/event_source.h"
#include "sinks/ipfix_export.h"
#include "sinks/jsonl.h"
#include "sinks/live_table.h"
#include "sinks/metrics.h"
#include "track/tracker.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <map>
#include <optional>
#include <unordered_map>

namespace tcflows {

class Attachments;
class StoreWriter;

// TrackerConfig and kernel idle timeouts from the command line.
TrackerConfig tracker_config(const RecordOptions &options, const Attachments &attachments);
tcf_config kernel_config(const RecordOptions &options);

class Agent {
public:
  // `store` may be null (--no-db).
  Agent(boost::asio::io_context &io, boost::asio::signal_set &signals, const BpfProgram &program,
        const RecordOptions &options, Attachments &attachments, StoreWriter *store);

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
  Status status() const;
  void count_interface_traffic(const ConnUpdate &update);
  std::map<std::string, InterfaceTraffic> interface_traffic() const;
  MetricsSnapshot metrics() const;

  const BpfProgram &program_;
  const RecordOptions &options_;
  Attachments &attachments_;
  StoreWriter *store_;
  bool show_iface_;
  bool tty_;
  Tracker tracker_;
  EventSource events_;
  std::optional<JsonlWriter> jsonl_;
  std::optional<IpfixExporter> ipfix_;
  std::optional<MetricsServer> metrics_;
  // Traffic per interface index, in and out, from the records' deltas.
  std::map<uint32_t, InterfaceTraffic> interface_traffic_;
  // Final records delivered, by (state, close_reason).
  std::map<std::pair<std::string, std::string>, uint64_t> closed_;
  boost::asio::steady_timer timer_;
  std::chrono::steady_clock::time_point next_flush_;
  boost::asio::signal_set &signals_;
  std::function<void()> detach_;
  size_t flows_in_map_ = 0;
};

} // namespace tcflows
