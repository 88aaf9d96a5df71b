#include "agent/replay.h"

#include "agent/config.h"
#include "kernel/maps.h"
#include "kernel/test_run.h"

#include <chrono>

namespace tcflows {
namespace {

static_assert(max_run_frame == TCF_READ_FRAME_BYTES, "a captured frame fits a read_frames entry");

using namespace std::chrono_literals;

// How long a sweep the doorbell asked for waits for the store to make
// earlier records durable, so that their slots go back to the program.
constexpr auto durable_wait = 5s;
// How long the end waits for the last records to be written.
constexpr auto final_wait = 60s;

// Sweeps run at least this often in capture time, as in the agent.
constexpr std::chrono::nanoseconds max_sweep_period = 1s;

std::chrono::nanoseconds sweep_period(const RecordOptions &options) {
  return std::min(options.interval, max_sweep_period);
}

// The first multiple of `step` after `at` that is past `now`.
uint64_t advance(uint64_t at, uint64_t now, uint64_t step) {
  return at + step * (1 + (now - at) / step);
}

// The records' interface: frames of a capture pass no device.
constexpr uint32_t capture_ifindex = 1;

} // namespace

Replay::Replay(boost::asio::io_context &io, const BpfProgram &program, ConnTable &table,
               const RecordOptions &options, Outputs &outputs)
    : io_(io), program_(program), options_(options), outputs_(outputs), batch_(program),
      tracker_(replay_tracker_config(options), table),
      doorbell_(io, program.events_fd(), [this] { rung_ = true; }) {
  outputs_.on_durable([this](uint64_t sequence) { on_durable(sequence); });
  doorbell_.start();
  outputs_.start();
}

void Replay::run(const CapturedFrame &frame) {
  now_ns_ = std::max(now_ns_, frame.ts_ns);
  if (next_sweep_ns_ == 0) {
    next_sweep_ns_ = now_ns_ + sweep_period(options_).count();
    next_checkpoint_ns_ = now_ns_ + options_.interval.count();
  }
  if (now_ns_ >= next_sweep_ns_) {
    run_batch();
    timed_sweep();
  }
  batch_.add(frame.data, frame.length, frame.ts_ns,
             frame.outgoing ? TCF_HOOK_EGRESS : TCF_HOOK_INGRESS, capture_ifindex);
  if (batch_.full())
    run_batch();
}

// Runs the frames added since the last batch, then looks for the doorbell:
// a batch takes at most as many new slots as it has frames, fewer than the
// free slots left when the program rings.
void Replay::run_batch() {
  if (batch_.empty())
    return;
  uint32_t frames = batch_.size();
  if (batch_.run() != 0)
    run_errors_ += frames;
  frames_ += frames;
  io_.poll();
  if (rung_ && frames_ >= next_bell_frame_)
    make_room();
}

// As the agent's timer, in capture time: a sweep every sweep_period (it
// seals what is closed or idle), the checkpoints of open connections and the
// counters at every --interval. Unlike the agent it first waits for the
// store to finish the previous sweep's records (written while frames ran),
// so that reading a capture twice gives the same records.
void Replay::timed_sweep() {
  bool checkpoint = now_ns_ >= next_checkpoint_ns_;
  wait_durable(durable_wait); // the previous sweeps' slots come back now, in every run
  sweep(checkpoint ? Checkpoint::all() : Checkpoint{}, checkpoint);
  next_sweep_ns_ = advance(next_sweep_ns_, now_ns_, sweep_period(options_).count());
  if (checkpoint)
    next_checkpoint_ns_ = advance(next_checkpoint_ns_, now_ns_, options_.interval.count());
}

// The doorbell rang, free slots run low: a sweep seals what is over, the
// next takes their final counters, and once the store made those records
// durable a third gives their slots back.
// When the connections are all live (more than --max-flows at once), sweeps
// free nothing: the next doorbell is then heard only after twice as many
// frames, so that the table is not swept again for every few frames.
void Replay::make_room() {
  rung_ = false;
  sweep(Checkpoint{}, false);
  sweep(Checkpoint{}, false);
  wait_durable(durable_wait);
  sweep(Checkpoint{}, false);
  bool room = last_.free > program_.kernel_config().bell_below;
  uint64_t batch = program_.read_batch();
  bell_gap_ =
      room ? batch
           : std::min<uint64_t>(std::max(bell_gap_, batch) * 2, program_.kernel_config().slots);
  next_bell_frame_ = frames_ + bell_gap_;
}

// One sweep, its records one interval of the outputs; with `counters_row`
// the program's counters go to the database too.
void Replay::sweep(Checkpoint checkpoint, bool counters_row) {
  outputs_.begin(now_ns_, interfaces());
  last_ = tracker_.sweep(now_ns_, checkpoint, [this](std::span<const ConnUpdate> chunk) {
    outputs_.add({chunk.begin(), chunk.end()});
  });
  Counters counters = read_counters(program_.counters_fd());
  pending_.emplace_back(outputs_.end(counters_row ? &counters : nullptr), last_.seq);
  on_durable(outputs_.durable());
}

void Replay::on_durable(uint64_t sequence) {
  while (!pending_.empty() && pending_.front().first <= sequence) {
    tracker_.durable(pending_.front().second);
    pending_.pop_front();
  }
}

// Runs the loop until every sweep's records are durable, or for at most
// `limit` (a store that cannot write keeps them queued; the program then
// counts what it cannot track, the summary what is still queued).
void Replay::wait_durable(std::chrono::nanoseconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (!pending_.empty() && std::chrono::steady_clock::now() < until)
    io_.run_one_until(until);
}

void Replay::finish() {
  run_batch();
  // Two sweeps: the second takes the finals of what the first sealed.
  sweep(Checkpoint{}, false);
  wait_durable(durable_wait);
  sweep(Checkpoint::all(), true);
  outputs_.begin(now_ns_, interfaces());
  tracker_.shutdown(
      now_ns_,
      [this](std::span<const ConnUpdate> chunk) {
        outputs_.add({chunk.begin(), chunk.end()});
      },
      CloseReason::eof);
  Counters counters = read_counters(program_.counters_fd());
  pending_.emplace_back(outputs_.end(&counters), last_.seq);
  wait_durable(final_wait); // the summary shows what was written
  doorbell_.stop();
  outputs_.finish();
  finished_ = true;
}

InterfacesSnapshot Replay::interfaces() const {
  std::vector<InterfaceNames::Entry> entries{{capture_ifindex, "capture", false}};
  return std::make_shared<const InterfaceNames>(std::move(entries));
}

Stats Replay::stats() const {
  Stats s;
  s.flows = program_.kernel_config().slots - std::min(program_.kernel_config().slots, last_.free);
  s.max_flows = program_.max_flows();
  s.counters = read_counters(program_.counters_fd());
  s.doorbells = doorbell_.rung();
  s.open_connections = finished_ ? 0 : tracker_.open_count(); // as of the last sweep
  s.tracker = tracker_.stats();
  s.finished_connections = s.tracker.finished;
  outputs_.add_to(s);
  return s;
}

} // namespace tcflows
