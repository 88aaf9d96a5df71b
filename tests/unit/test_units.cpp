#include "util/units.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <array>
#include <random>

using namespace tcflows;
using namespace std::chrono;

TEST_CASE("human_bytes: plain below 1 KiB, two decimals above") {
  CHECK(human_bytes(0) == "0");
  CHECK(human_bytes(308) == "308");
  CHECK(human_bytes(1023) == "1023");
  CHECK(human_bytes(1024) == "1.00 KiB");
  CHECK(human_bytes(357591) == "349.21 KiB");
  CHECK(human_bytes(135456522) == "129.18 MiB");
  CHECK(human_bytes(5ull << 30) == "5.00 GiB");
  CHECK(human_bytes(UINT64_MAX) == "16.00 EiB");
}

TEST_CASE("human_bytes rounds as printf's %.2f does: to nearest, exact ties to even") {
  // Ties: bytes * 100 / 1024 ends in exactly .5 (1.125 KiB -> 1.12, 1.375 KiB -> 1.38).
  CHECK(human_bytes(1152) == "1.12 KiB");
  CHECK(human_bytes(1408) == "1.38 KiB");
  CHECK(human_bytes(1048575) == "1024.00 KiB"); // rounds up past the unit it is in
  std::mt19937_64 rng(3);
  for (int i = 0; i < 200'000; i++) {
    uint64_t bytes = rng() >> (11 + rng() % 53); // below 2^53: exact as a double
    if (bytes < 1024)
      continue;
    double value = static_cast<double>(bytes);
    int unit = 0;
    for (value /= 1024; value >= 1024 && unit < 5; value /= 1024)
      unit++;
    auto expected = fmt::format(
        "{:.2f} {}", value,
        std::array{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}[static_cast<size_t>(unit)]);
    REQUIRE_MESSAGE(human_bytes(bytes) == expected, bytes);
  }
}

TEST_CASE("parse_duration accepts units and sums") {
  CHECK(parse_duration("30s") == seconds(30));
  CHECK(parse_duration("15m") == minutes(15));
  CHECK(parse_duration("1h") == hours(1));
  CHECK(parse_duration("2d") == hours(48));
  CHECK(parse_duration("250ms") == milliseconds(250));
  CHECK(parse_duration("1h30m") == minutes(90));
  CHECK(parse_duration("1w") == hours(24 * 7));
  CHECK(parse_duration("106751d") == hours(24 * 106751)); // just below the limit
}

TEST_CASE("parse_duration rejects what is not a duration") {
  for (const char *bad : {"", "5", "s", "5x", "-5s", "5 s", "1.5h", "h1", "99999999999d", "106752d",
                          "292y", "9223372036854775807s", "106751d1000000h"})
    CHECK_MESSAGE(!parse_duration(bad), bad);
}

TEST_CASE("human_duration") {
  CHECK(human_duration(milliseconds(325)) == "325 ms");
  CHECK(human_duration(milliseconds(1500)) == "1.5 s");
  CHECK(human_duration(seconds(125)) == "2m05s");
  CHECK(human_duration(minutes(123)) == "2h03m");
  CHECK(human_duration(hours(50)) == "2d02h");
}

TEST_CASE("human_round_trip: microseconds, then milliseconds with fewer decimals") {
  using std::chrono::nanoseconds;
  CHECK(human_round_trip(nanoseconds(85'400)) == "85 us");
  CHECK(human_round_trip(nanoseconds(1'500'000)) == "1.50 ms");
  CHECK(human_round_trip(nanoseconds(12'340'000)) == "12.3 ms");
  CHECK(human_round_trip(nanoseconds(2'500'000'000)) == "2.5 s");
}
