#include "cmd/read.h"

#include "agent/config.h"
#include "agent/replay.h"
#include "capture/capture_set.h"
#include "kernel/bpf_program.h"
#include "kernel/conn_table.h"
#include "sinks/live_table.h"
#include "sinks/outputs.h"
#include "util/error.h"
#include "util/log.h"

#include <boost/asio/io_context.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdio>

namespace tcflows {
namespace {

// The program of an offline run: the frame's time as the packet clock.
ProgramConfig replay_program_config(const RecordOptions &options) {
  ProgramConfig config;
  config.max_flows = options.max_flows;
  config.ringbuf_bytes = options.ringbuf_bytes;
  config.kernel = kernel_config(options);
  config.kernel.flags |= TCF_CFG_SKB_TSTAMP;
  config.hooks = false; // tcflows_read alone: the hooks' verification is most of the start
  return config;
}

// What was read and what was not, in one line.
std::string capture_summary(const CaptureStats &c, uint64_t run_errors) {
  std::string line =
      fmt::format("read {} frames from {} file{}", c.frames, c.files, c.files == 1 ? "" : "s");
  auto add = [&](uint64_t value, const char *what) {
    if (value)
      line += fmt::format("  {} {}", what, value);
  };
  add(c.bad_frames, "bad frames");
  add(c.cut_frames, "long frames");
  add(c.padded_frames, "padded frames");
  add(c.read_errors, "read errors");
  add(run_errors, "run errors");
  return line;
}

} // namespace

int run_read(const ReadOptions &options) {
  CaptureSet captures(options.files);
  if (captures.opened() == 0)
    fail(exit_usage, "{}", fmt::join(captures.errors(), "; "));
  for (const auto &error : captures.errors())
    log::error("{}", error);

  BpfProgram program = BpfProgram::load(replay_program_config(options.record));
  auto table = kernel_conn_table(program);
  boost::asio::io_context io;
  Outputs outputs(io, outputs_config(options.record));
  Replay replay(io, program, *table, options.record, outputs);
  while (auto frame = captures.next())
    replay.run(*frame);
  replay.finish();
  io.run(); // the collectors get what is queued

  if (!options.record.quiet) {
    std::FILE *out = options.record.jsonl == "-" ? stderr : stdout;
    fmt::print(out, "{}\n{}\n", capture_summary(captures.stats(), replay.run_errors()),
               status_line(replay.stats()));
  }
  return captures.errors().empty() ? 0 : exit_failure;
}

} // namespace tcflows
