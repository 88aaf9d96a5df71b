#include "agent/agent.h"

#include "attach/attachments.h"
#include "attach/netif.h"
#include "kernel/maps.h"
#include "sinks/live_table.h"
#include "sinks/store_writer.h"
#include "util/clock.h"
#include "util/log.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <limits>

namespace tcflows {
namespace {

using namespace std::chrono_literals;

// Sweeps run at least this often, so that finished connections leave the
// flow map soon after their linger and idle ones soon after their timeout.
constexpr std::chrono::nanoseconds max_sweep_period = 1s;

uint64_t epoch_now_ns() {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count();
}

std::vector<FlowEntry> as_entries(const std::vector<FlowTotals> &totals) {
  std::vector<FlowEntry> entries(totals.size());
  for (size_t i = 0; i < totals.size(); i++) {
    entries[i].key = totals[i].key;
    for (int d = 0; d < 2; d++) {
      entries[i].val.pkts[d] = totals[i].pkts[d];
      entries[i].val.bytes[d] = totals[i].bytes[d];
    }
  }
  return entries;
}

// This boot's id (it changes at every boot), hashed for the uids.
uint64_t boot_salt() {
  std::string id;
  std::ifstream("/proc/sys/kernel/random/boot_id") >> id;
  uint64_t hash = 14695981039346656037ull; // FNV-1a: the same on every build
  for (unsigned char c : id)
    hash = (hash ^ c) * 1099511628211ull;
  return hash;
}

} // namespace

TrackerConfig tracker_config(const RecordOptions &options, const Attachments &attachments) {
  TrackerConfig config;
  config.tcp_idle = options.tcp_timeout;
  config.udp_idle = options.udp_timeout;
  config.icmp_idle = options.icmp_timeout;
  config.other_idle = options.other_timeout;
  config.linger = options.linger;
  config.boot_to_epoch_ns = measure_boot_to_epoch_ns();
  config.uid_salt = boot_salt();
  config.iface_name = [&attachments](uint32_t ifindex) { return attachments.name_of(ifindex); };
  return config;
}

tcf_config kernel_config(const RecordOptions &options) {
  tcf_config config{};
  config.idle_ns[TCF_IDLE_TCP] = options.tcp_timeout.count();
  config.idle_ns[TCF_IDLE_UDP] = options.udp_timeout.count();
  config.idle_ns[TCF_IDLE_ICMP] = options.icmp_timeout.count();
  config.idle_ns[TCF_IDLE_OTHER] = options.other_timeout.count();
  config.flags = TCF_CFG_EVENTS;
  return config;
}

Agent::Agent(boost::asio::io_context &io, boost::asio::signal_set &signals,
             const BpfProgram &program, const RecordOptions &options, Attachments &attachments,
             StoreWriter *store)
    : program_(program), options_(options), attachments_(attachments), store_(store),
      show_iface_(attachments.configured() > 1), tty_(::isatty(STDOUT_FILENO)),
      tracker_(tracker_config(options, attachments)),
      events_(io, program.events_fd(), [this](const tcf_event &e) { on_event(e); }), timer_(io),
      next_flush_(std::chrono::steady_clock::now() + options.interval), signals_(signals) {
  if (store_)
    tracker_.resume(store_->take_open_connections());
  if (!options.jsonl.empty())
    jsonl_.emplace(options.jsonl);
  if (!options.ipfix.empty())
    ipfix_.emplace(io, options.ipfix, options.ipfix_active);
  if (!options.metrics.empty())
    metrics_.emplace(io, options.metrics, [this] { return format_metrics(metrics()); });
}

void Agent::start(std::function<void()> detach) {
  detach_ = std::move(detach);
  signals_.async_wait([this](const boost::system::error_code &error, int signal) {
    if (!error)
      stop(signal);
  });
  events_.start();
  if (ipfix_)
    ipfix_->start();
  if (metrics_)
    metrics_->start();
  arm_timer();
}

void Agent::on_event(const tcf_event &event) {
  tracker_.on_event(event);
  if (event.type != TCF_EV_ENDED)
    return;
  // Take the ended connection out now, so that the ended map stays small.
  tcf_ended_key key{};
  key.flow = event.key;
  key.gen = event.gen;
  if (auto val = take_ended(program_.ended_fd(), key))
    tracker_.on_ended(key, *val);
}

// Ended connections whose events were lost, the flow map, and deletion of the
// connections the tracker says are over.
void Agent::sweep() {
  for (const auto &ended : drain_ended(program_.ended_fd()))
    tracker_.on_ended(ended.key, ended.val);
  auto flows = read_flows(program_.flows_fd());
  flows_in_map_ = flows.size();
  uint64_t now = boot_now_ns();
  for (const auto &key : tracker_.on_flows(flows, now)) {
    if (auto val = remove_flow(program_.flows_fd(), key)) {
      tracker_.on_removed(key, *val, now);
      flows_in_map_--;
    }
  }
}

// Every sweep period: a sweep; every --interval also the records and the table.
void Agent::tick() {
  attachments_.reconcile();
  sweep();
  if (std::chrono::steady_clock::now() < next_flush_)
    return;
  next_flush_ += options_.interval;
  deliver(tracker_.take_updates(boot_now_ns()));
  show();
}

void Agent::deliver(std::vector<ConnUpdate> updates) {
  if (jsonl_ && !updates.empty())
    jsonl_->write(updates);
  if (ipfix_)
    ipfix_->export_updates(updates, epoch_now_ns());
  for (const auto &update : updates) {
    count_interface_traffic(update);
    if (update.final())
      closed_[{update.record.state, *update.record.close_reason}]++;
  }
  if (store_) {
    if (auto stale = tracker_.take_unresumed(); !stale.empty()) {
      log::info("{} connection{} an earlier agent left open ended while none ran: closed",
                stale.size(), stale.size() == 1 ? "" : "s");
      store_->close_stale(std::move(stale));
    }
    // Moved, not copied: a batch can hold every open connection.
    store_->submit(std::move(updates), read_counters(program_.counters_fd()), epoch_now_ns());
  }
}

// On loopback only ingress is hooked and every packet comes in there.
void Agent::count_interface_traffic(const ConnUpdate &update) {
  const ConnRecord &r = update.record;
  const TrafficDelta &d = update.delta;
  InterfaceTraffic &t = interface_traffic_[r.ifindex];
  bool loopback = attachments_.is_loopback(r.ifindex);
  int orig = loopback || r.orig_ingress ? 0 : 1, resp = loopback || !r.orig_ingress ? 0 : 1;
  t.pkts[orig] += d.orig_pkts;
  t.bytes[orig] += d.orig_bytes;
  t.pkts[resp] += d.resp_pkts;
  t.bytes[resp] += d.resp_bytes;
}

Status Agent::status() const {
  Status status;
  status.flows = flows_in_map_;
  status.max_flows = program_.max_flows();
  status.counters = read_counters(program_.counters_fd());
  status.open_connections = tracker_.open_count();
  status.finished_connections = tracker_.connections_finished();
  status.events = events_.consumed();
  auto stats = tracker_.stats();
  status.finals_from_snapshot = stats.finals_from_snapshot;
  status.counter_regressions = stats.counter_regressions;
  status.events_unmatched = stats.events_unmatched;
  if (ipfix_) {
    auto totals = ipfix_->totals();
    status.ipfix = true;
    status.ipfix_sent = totals.records_sent;
    status.ipfix_failed = totals.records_failed;
  }
  if (store_)
    status.store = store_->stats();
  return status;
}

std::map<std::string, InterfaceTraffic> Agent::interface_traffic() const {
  std::map<std::string, InterfaceTraffic> by_name;
  for (const auto &[ifindex, traffic] : interface_traffic_) {
    auto &sum = by_name[attachments_.name_of(ifindex)];
    for (int slot = 0; slot < 3; slot++) {
      sum.pkts[slot] += traffic.pkts[slot];
      sum.bytes[slot] += traffic.bytes[slot];
    }
  }
  return by_name;
}

MetricsSnapshot Agent::metrics() const {
  MetricsSnapshot s;
  s.interfaces = interface_traffic();
  s.flows = flows_in_map_;
  s.max_flows = program_.max_flows();
  s.counters = read_counters(program_.counters_fd());
  s.events = events_.consumed();
  for (const auto &conn : tracker_.open_connections())
    s.open_by_state[conn.state]++;
  s.closed = closed_;
  if (store_) {
    auto stats = store_->stats();
    s.store = StoreMetrics{stats.queued + store_->backlog(), stats.write_errors, stats.written,
                           stats.dropped};
  }
  if (jsonl_)
    s.jsonl_errors = jsonl_->errors();
  if (ipfix_) {
    s.ipfix = ipfix_->collectors();
    s.ipfix_skipped = ipfix_->records_skipped();
  }
  s.process = read_process_metrics();
  return s;
}

void Agent::show() {
  if (options_.quiet || options_.jsonl == "-")
    return;
  size_t top = options_.top;
  if (options_.format == LiveFormat::json && !options_.top_given)
    top = std::numeric_limits<size_t>::max();
  std::string out;
  if (options_.by == LiveBy::conn) {
    auto conns = tracker_.open_connections();
    out = options_.format == LiveFormat::json
              ? format_conn_json(epoch_now_ns(), std::move(conns), top, status())
              : format_conn_table(std::move(conns), top, status());
  } else {
    auto rows = direction_rows(as_entries(tracker_.flow_totals()));
    auto names = [this](uint32_t ifindex) { return attachments_.name_of(ifindex); };
    out = options_.format == LiveFormat::json
              ? format_json(epoch_now_ns(), rows, top, status(), names)
              : format_table(rows, top, show_iface_, status(), names);
  }
  if (options_.format == LiveFormat::json)
    out += '\n';
  else
    out.insert(0, tty_ ? "\x1b[H\x1b[2J" : "\n");
  std::fputs(out.c_str(), stdout);
  std::fflush(stdout);
}

// SIGINT/SIGTERM: take in every event and ended connection, then write every
// open connection as final ("shutdown") and let the loop end.
void Agent::stop(int signal) {
  log::debug("signal {}: stopping", signal);
  timer_.cancel();
  if (detach_)
    detach_();
  events_.drain();
  events_.stop();
  sweep();
  deliver(tracker_.take_updates(boot_now_ns()));
  show(); // the final numbers, counted up to the stop
  deliver(tracker_.shutdown(boot_now_ns()));
  // Let the loop end: the exporter sends what is queued, then closes.
  if (ipfix_)
    ipfix_->finish();
  if (metrics_)
    metrics_->stop();
}

void Agent::arm_timer() {
  timer_.expires_after(std::min(options_.interval, max_sweep_period));
  timer_.async_wait([this](const boost::system::error_code &error) {
    if (error)
      return;
    tick();
    arm_timer();
  });
}

} // namespace tcflows
