#include "util/units.h"

#include <fmt/format.h>

#include <array>
#include <charconv>

namespace tcflows {

std::string human_bytes(uint64_t bytes) {
  static constexpr std::array units{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024)
    return std::to_string(bytes);
  size_t unit = 0;
  int shift = 10; // bytes / 2^shift in the unit
  while (unit + 1 < units.size() && bytes >> shift >= 1024) {
    unit++;
    shift += 10;
  }
  // Hundredths, rounded to nearest, ties to even, as printf's %.2f rounds
  // the same exact value; in integers, since reports print many of them.
  unsigned __int128 scaled = static_cast<unsigned __int128>(bytes) * 100;
  unsigned __int128 half = static_cast<unsigned __int128>(1) << (shift - 1);
  auto hundredths = static_cast<uint64_t>(scaled >> shift);
  unsigned __int128 rest = scaled & ((half << 1) - 1);
  if (rest > half || (rest == half && hundredths % 2))
    hundredths++;
  char fraction[4] = {'.', static_cast<char>('0' + hundredths / 10 % 10),
                      static_cast<char>('0' + hundredths % 10), ' '};
  return std::to_string(hundredths / 100).append(fraction, 4).append(units[unit]);
}

std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text) {
  using namespace std::chrono;
  struct Unit {
    std::string_view suffix;
    nanoseconds size;
  };
  // Longest suffixes first, so that "ms" is not read as "m".
  static constexpr std::array units{Unit{"ms", milliseconds(1)}, Unit{"s", seconds(1)},
                                    Unit{"m", minutes(1)},       Unit{"h", hours(1)},
                                    Unit{"d", hours(24)},        Unit{"w", hours(24 * 7)}};
  if (text.empty())
    return std::nullopt;
  nanoseconds total{0};
  while (!text.empty()) {
    uint64_t number = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (ec != std::errc() || end == text.data())
      return std::nullopt;
    text.remove_prefix(end - text.data());
    const Unit *found = nullptr;
    for (const auto &unit : units)
      if (text.starts_with(unit.suffix)) {
        found = &unit;
        break;
      }
    if (!found)
      return std::nullopt;
    text.remove_prefix(found->suffix.size());
    // Beyond what nanoseconds hold (about 292 years) is not a duration.
    auto max = std::chrono::nanoseconds::max();
    if (number > static_cast<uint64_t>(max / found->size) ||
        found->size * static_cast<int64_t>(number) > max - total)
      return std::nullopt;
    total += found->size * static_cast<int64_t>(number);
  }
  return total;
}

std::string human_duration(std::chrono::nanoseconds duration) {
  using namespace std::chrono;
  auto ms = duration_cast<milliseconds>(duration).count();
  if (ms < 1000)
    return fmt::format("{} ms", ms);
  if (ms < 60'000)
    return fmt::format("{:.1f} s", ms / 1000.0);
  auto s = ms / 1000;
  if (s < 3600)
    return fmt::format("{}m{:02}s", s / 60, s % 60);
  if (s < 86400)
    return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
  return fmt::format("{}d{:02}h", s / 86400, s % 86400 / 3600);
}

std::string human_round_trip(std::chrono::nanoseconds rtt) {
  double us = double(rtt.count()) / 1000;
  if (us < 1000)
    return fmt::format("{:.0f} us", us);
  if (us < 10'000)
    return fmt::format("{:.2f} ms", us / 1000);
  if (us < 1'000'000)
    return fmt::format("{:.1f} ms", us / 1000);
  return human_duration(rtt);
}

} // namespace tcflows
