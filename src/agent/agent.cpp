#include "agent/agent.h"

#include "agent/config.h"
#include "attach/attachments.h"
#include "kernel/maps.h"
#include "util/clock.h"
#include "util/log.h"

#include <algorithm>
#include <chrono>

namespace tcflows {
namespace {

using namespace std::chrono_literals;

// Sweeps run at least this often, so that finished connections leave the
// flow map soon after their linger and idle ones soon after their timeout.
constexpr std::chrono::nanoseconds max_sweep_period = 1s;

} // namespace

Agent::Agent(boost::asio::io_context &io, boost::asio::signal_set &signals,
             const BpfProgram &program, const RecordOptions &options, Attachments &attachments,
             Outputs &outputs)
    : program_(program), options_(options), attachments_(attachments), outputs_(outputs),
      tracker_(tracker_config(options)),
      events_(io, program.events_fd(), [this](const tcf_event &e) { on_event(e); }),
      live_(live_table_config(options, attachments.configured())), timer_(io),
      next_flush_(std::chrono::steady_clock::now() + options.interval), signals_(signals) {
  tracker_.resume(outputs_.take_open_connections());
  if (!options.metrics.empty())
    metrics_.emplace(io, options.metrics, [this] { return format_metrics(stats(true)); });
}

void Agent::start(std::function<void()> detach) {
  detach_ = std::move(detach);
  signals_.async_wait([this](const boost::system::error_code &error, int signal) {
    if (!error)
      stop(signal);
  });
  events_.start();
  outputs_.start();
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
  if (auto stale = tracker_.take_unresumed(); !stale.empty()) {
    log::info("{} connection{} an earlier agent left open ended while none ran: closed",
              stale.size(), stale.size() == 1 ? "" : "s");
    outputs_.close_stale(std::move(stale));
  }
  outputs_.deliver(std::move(updates), epoch_now_ns(), interfaces(),
                   read_counters(program_.counters_fd()));
}

Stats Agent::stats(bool for_metrics) const {
  Stats s;
  s.flows = flows_in_map_;
  s.max_flows = program_.max_flows();
  s.counters = read_counters(program_.counters_fd());
  s.events = events_.consumed();
  s.events_malformed = events_.malformed();
  s.open_connections = tracker_.open_count();
  s.finished_connections = tracker_.connections_finished();
  s.tracker = tracker_.stats();
  outputs_.add_to(s);
  if (for_metrics) {
    for (const auto &conn : tracker_.open_connections())
      s.open_by_state[conn.state]++;
    s.process = read_process_metrics();
  }
  return s;
}

InterfacesSnapshot Agent::interfaces() const {
  std::vector<InterfaceNames::Entry> entries;
  for (const auto &[ifindex, name] : attachments_.names())
    entries.push_back({ifindex, name, attachments_.is_loopback(ifindex)});
  return std::make_shared<const InterfaceNames>(std::move(entries));
}

void Agent::show() {
  if (!live_.enabled())
    return;
  auto names = interfaces();
  if (live_.by() == LiveBy::conn)
    live_.draw_connections(tracker_.open_connections(), stats(), *names, epoch_now_ns());
  else
    live_.draw_flows(tracker_.flow_totals(), stats(), *names, epoch_now_ns());
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
  outputs_.finish();
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
