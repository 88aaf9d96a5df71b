// Points in time as people type and read them: ISO 8601, UTC.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tcflows {

// "2026-11-25", "2026-11-25T17:00", "2026-11-25T17:00:00Z",
// "2026-11-25 17:00:00.250", "2026-11-25T18:00:00+01:00" (or +0100, +01):
// Unix epoch ns. Without a zone the time is UTC. nullopt when not a valid time.
std::optional<int64_t> parse_iso8601(std::string_view text);

// A duration ("1h": that long before now_ns) or an ISO 8601 time.
std::optional<int64_t> parse_time_arg(std::string_view text, int64_t now_ns);

// "2026-11-25T17:00:00.123Z".
std::string format_utc(int64_t epoch_ns);

} // namespace tcflows
