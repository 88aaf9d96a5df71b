// The offline twin of the Agent: the frames of a capture run through the TC
// program (bpf_prog_test_run_opts) with their capture time as the packet
// clock, and the same tracker and outputs as `record`. Time is capture time
// throughout: sweeps as often as the agent's (and when the program rings its
// doorbell), checkpoints every --interval, timeouts, the records' times. At the end of the
// input every open connection is final, close reason `eof`.
#pragma once

#include "agent/options.h"
#include "capture/frame.h"
#include "kernel/bpf_program.h"
#include "kernel/conn_table.h"
#include "kernel/doorbell.h"
#include "kernel/test_run.h"
#include "sinks/outputs.h"
#include "sinks/stats.h"
#include "track/tracker.h"

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <utility>

namespace tcflows {

class Replay {
public:
  Replay(boost::asio::io_context &io, const BpfProgram &program, ConnTable &table,
         const RecordOptions &options, Outputs &outputs);

  // Takes one frame; sweeps first when its time has passed the next
  // sweep's (after running the frames before it). Frames run a batch at a time.
  void run(const CapturedFrame &frame);
  // The end of the input: a last sweep, then every connection final.
  void finish();

  // Frames of batches the kernel refused to run (never expected): not counted anywhere else.
  uint64_t run_errors() const { return run_errors_; }
  Stats stats() const;

private:
  void sweep(Checkpoint checkpoint, bool counters_row);
  void run_batch();
  void timed_sweep();
  void make_room();
  void on_durable(uint64_t sequence);
  void wait_durable(std::chrono::nanoseconds limit);
  InterfacesSnapshot interfaces() const;

  boost::asio::io_context &io_;
  const BpfProgram &program_;
  const RecordOptions &options_;
  Outputs &outputs_;
  FrameBatch batch_;
  Tracker tracker_;
  Doorbell doorbell_;
  bool rung_ = false;
  uint64_t next_bell_frame_ = 0; // doorbells before this frame wait (see make_room())
  uint64_t bell_gap_ = 0;
  bool finished_ = false;
  uint64_t now_ns_ = 0;        // capture time: the latest frame's
  uint64_t next_sweep_ns_ = 0; // 0: set by the first frame
  uint64_t next_checkpoint_ns_ = 0;
  uint64_t frames_ = 0;
  uint64_t run_errors_ = 0;
  std::deque<std::pair<uint64_t, uint64_t>> pending_; // (the outputs' interval, the sweep)
  SweepResult last_;
};

} // namespace tcflows
