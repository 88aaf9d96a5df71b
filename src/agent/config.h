// What the options of `record` mean for each part of the recording: the TC
// program's configuration, the tracker's, the outputs' and the live table's.
#pragma once

#include "agent/options.h"
#include "kernel/abi.h"
#include "sinks/live_table.h"
#include "sinks/outputs.h"
#include "track/tracker.h"

#include <cstddef>
#include <cstdint>

namespace tcflows {

// The idle timeouts.
tcf_config kernel_config(const RecordOptions &options);

// Timeouts, the packet clock's offset to Unix time (measured now), the boot
// salt of the uids, and what the live table and the metrics need.
TrackerConfig tracker_config(const RecordOptions &options, size_t interfaces);

// For a capture read offline: the packet clock is the capture's, Unix time
// already; uids depend on the capture alone; no live table.
TrackerConfig replay_tracker_config(const RecordOptions &options);

OutputsConfig outputs_config(const RecordOptions &options);

// `interfaces`: how many the recording was asked for (more than one: an
// IFACE column).
LiveTableConfig live_table_config(const RecordOptions &options, size_t interfaces);

// This boot's id (it changes at every boot), hashed: what tells the uids of
// one boot from another's, whose packet clock started again at 0.
uint64_t boot_salt();

} // namespace tcflows
