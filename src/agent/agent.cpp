#include "agent/agent.h"

#include "agent/config.h"
#include "attach/attachments.h"
#include "kernel/maps.h"
#include "util/clock.h"
#include "util/log.h"

#include <algorithm>

namespace tcflows {
namespace {

using namespace std::chrono_literals;

// Sweeps run at least this often: finals come out, and closed or idle
// connections are sealed, within about a second.
constexpr std::chrono::nanoseconds max_sweep_period = 1s;

std::chrono::nanoseconds sweep_period(const RecordOptions &options) {
  return std::min(options.interval, max_sweep_period);
}
// A doorbell sweeps at once, but not more often than this.
constexpr std::chrono::nanoseconds min_sweep_gap = 20ms;

} // namespace

Agent::Agent(boost::asio::io_context &io, boost::asio::signal_set &signals,
             const BpfProgram &program, ConnTable &table, const RecordOptions &options,
             Attachments &attachments, Outputs &outputs, std::optional<ProcProgram> proc)
    : program_(program), options_(options), attachments_(attachments), outputs_(outputs),
      tracker_(tracker_config(options, attachments.configured()), table), join_(std::move(proc)),
      doorbell_(io, program.events_fd(), [this] { tick(false); }),
      live_(live_table_config(options, attachments.configured())), timer_(io),
      next_checkpoint_(std::chrono::steady_clock::now() + options.interval), signals_(signals),
      shares_(uint32_t(std::max<int64_t>(1, options.interval / sweep_period(options)))) {
  tracker_.resume(outputs_.take_open_connections());
  tracker_.set_already_final([this](const Uid &uid) { return outputs_.already_final(uid); });
  outputs_.on_durable([this](uint64_t sequence) { on_durable(sequence); });
  if (!options.metrics.empty())
    metrics_.emplace(io, options.metrics, [this] { return format_metrics(stats(true)); });
}

void Agent::start(std::function<void()> detach) {
  detach_ = std::move(detach);
  signals_.async_wait([this](const boost::system::error_code &error, int signal) {
    if (!error)
      stop(signal);
  });
  doorbell_.start();
  outputs_.start();
  if (metrics_)
    metrics_->start();
  arm_timer();
}

// The timer, or a doorbell: a sweep. Each timer sweep reports its share of
// the open connections, so that every one is reported once an --interval
// and a large table's checkpoints spread over the interval; at every
// --interval also the counters row and the live table.
void Agent::tick(bool timer) {
  auto now = std::chrono::steady_clock::now();
  if (!timer && now - last_sweep_ < min_sweep_gap)
    return;
  attachments_.reconcile();
  Checkpoint checkpoint;
  if (timer)
    checkpoint = {uint32_t(ticks_++ % shares_), shares_};
  bool interval = now >= next_checkpoint_;
  if (interval)
    next_checkpoint_ += options_.interval * (1 + (now - next_checkpoint_) / options_.interval);
  sweep(checkpoint, interval);
  if (interval)
    show();
}

// One sweep, its records one interval of the outputs; the counters go to
// the database at every --interval.
void Agent::sweep(Checkpoint checkpoint, bool counters_row) {
  auto started = std::chrono::steady_clock::now();
  last_sweep_ = started;
  if (auto stale = tracker_.take_unresumed(); !stale.empty()) {
    log::info("{} connection{} an earlier agent left open ended while none ran: closed",
              stale.size(), stale.size() == 1 ? "" : "s");
    outputs_.close_stale(std::move(stale));
  }
  outputs_.begin(epoch_now_ns(), interfaces());
  tracker_.follow_wall_clock(measure_boot_to_epoch_ns());
  last_ = tracker_.sweep(boot_now_ns(), checkpoint,
                         [this](std::span<const ConnUpdate> chunk) { deliver(chunk); });
  Counters counters = read_counters(program_.counters_fd());
  pending_.emplace_back(outputs_.end(counters_row ? &counters : nullptr), last_.seq);
  on_durable(outputs_.durable());
  sweep_us_ = std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::steady_clock::now() - started)
                  .count();
}

void Agent::deliver(std::span<const ConnUpdate> chunk) {
  std::vector<ConnUpdate> updates(chunk.begin(), chunk.end());
  join_.annotate(updates);
  outputs_.add(std::move(updates));
}

// The outputs made their intervals up to `sequence` durable: the slots of
// the connections those sweeps finished can go back to the program.
void Agent::on_durable(uint64_t sequence) {
  while (!pending_.empty() && pending_.front().first <= sequence) {
    tracker_.durable(pending_.front().second);
    pending_.pop_front();
  }
}

Stats Agent::stats(bool for_metrics) const {
  Stats s;
  s.flows = program_.kernel_config().slots - std::min(program_.kernel_config().slots, last_.free);
  s.max_flows = program_.max_flows();
  s.counters = read_counters(program_.counters_fd());
  s.doorbells = doorbell_.rung();
  s.sweep_us = sweep_us_;
  s.open_connections = tracker_.open_count();
  s.tracker = tracker_.stats();
  s.finished_connections = s.tracker.finished;
  s.proc = join_.stats();
  outputs_.add_to(s);
  if (for_metrics) {
    for (size_t state = 0; state < s.tracker.open_by_state.size(); state++)
      if (s.tracker.open_by_state[state])
        s.open_by_state[ConnState(state)] = s.tracker.open_by_state[state];
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
  size_t rows = live_.rows();
  if (live_.by() == LiveBy::conn) {
    auto open = tracker_.top_open(rows);
    join_.annotate(std::span<ConnRecord>(open));
    live_.draw_connections(open, stats(), *names, epoch_now_ns());
  } else {
    live_.draw_flows(tracker_.flow_totals(rows), stats(), *names, epoch_now_ns());
  }
}

// SIGINT/SIGTERM: detach, take in what the program counted, then write every
// open connection as final ("shutdown") and let the loop end.
void Agent::stop(int signal) {
  log::debug("signal {}: stopping", signal);
  timer_.cancel();
  if (detach_)
    detach_();
  doorbell_.stop();
  sweep(Checkpoint::all(), true);
  show(); // the final numbers, counted up to the stop
  outputs_.begin(epoch_now_ns(), interfaces());
  tracker_.shutdown(boot_now_ns(), [this](std::span<const ConnUpdate> chunk) { deliver(chunk); });
  Counters counters = read_counters(program_.counters_fd());
  outputs_.end(&counters);
  // Let the loop end: the exporter sends what is queued, then closes.
  outputs_.finish();
  if (metrics_)
    metrics_->stop();
}

void Agent::arm_timer() {
  timer_.expires_after(sweep_period(options_));
  timer_.async_wait([this](const boost::system::error_code &error) {
    if (error)
      return;
    tick(true);
    arm_timer();
  });
}

} // namespace tcflows
