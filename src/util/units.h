// Units people read and type: byte sizes, durations.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tcflows {

// "308", "349.21 KiB", "129.18 MiB": plain below 1 KiB, two decimals above.
std::string human_bytes(uint64_t bytes);

// "30s", "15m", "1h", "2d", "250ms", "7d12h": nullopt when not a duration.
std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text);

// "325 ms", "1.5 s", "2h03m".
std::string human_duration(std::chrono::nanoseconds duration);

// A round trip, finer than a duration: "85 us", "1.50 ms", "12.3 ms", then
// as human_duration.
std::string human_round_trip(std::chrono::nanoseconds rtt);

} // namespace tcflows
