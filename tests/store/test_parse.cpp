// What people type into `report`: times and protocol names.
#include "track/flow.h"
#include "util/timestamp.h"

#include <doctest/doctest.h>

using namespace tcflows;

namespace {
constexpr int64_t sec = 1'000'000'000;
constexpr int64_t t = 1'795'626'000 * sec; // 2026-11-25T17:00:00Z: date -u -d ... +%s
} // namespace

TEST_CASE("parse_iso8601: the forms people write") {
  CHECK(parse_iso8601("2026-11-25T17:00:00Z") == t);
  CHECK(parse_iso8601("2026-11-25T17:00:00z") == t);
  CHECK(parse_iso8601("2026-11-25T17:00:00") == t); // no zone: UTC
  CHECK(parse_iso8601("2026-11-25 17:00:00") == t);
  CHECK(parse_iso8601("2026-11-25T17:00") == t);
  CHECK(parse_iso8601("2026-11-25T18:00:00+01:00") == t);
  CHECK(parse_iso8601("2026-11-25T18:30:00+0130") == t);
  CHECK(parse_iso8601("2026-11-25T12:00:00-05") == t);
  CHECK(parse_iso8601("2026-11-25T17:00:00.250Z") == t + sec / 4);
  CHECK(parse_iso8601("2026-11-25T17:00:00,5") == t + sec / 2);
  CHECK(parse_iso8601("2026-11-25T17:00:00.123456789Z") == t + 123'456'789);
  CHECK(parse_iso8601("2026-11-25") == t - 17 * 3600 * sec);
  CHECK(parse_iso8601("1970-01-01T00:00:00Z") == 0);
  CHECK(parse_iso8601("2024-02-29T00:00:00Z") == 1'709'164'800 * sec);
}

TEST_CASE("parse_iso8601 rejects what is not a valid time") {
  for (const char *bad : {"",
                          "2026",
                          "2026-11",
                          "2026-11-25T",
                          "2026-11-25T17",
                          "2026-13-01",
                          "2026-02-29",
                          "2026-11-31",
                          "2026-11-25T24:00:00",
                          "2026-11-25T17:60:00",
                          "2026-11-25T17:00:61",
                          "2026-11-25T17:00:00.",
                          "2026-11-25T17:00:00+",
                          "2026-11-25T17:00:00+1",
                          "2026-11-25T17:00:00+01:60",
                          "2026-11-25T17:00:00ZZ",
                          "2026-11-25x17:00",
                          "26-11-25",
                          "1969-12-31T23:59:59Z",
                          "9999-01-01",
                          "yesterday",
                          "2026-11-25T17:00:00 Z"})
    CHECK_MESSAGE(!parse_iso8601(bad), bad);
}

TEST_CASE("parse_time_arg: a duration counts back from now") {
  CHECK(parse_time_arg("1h", t) == t - 3600 * sec);
  CHECK(parse_time_arg("30s", t) == t - 30 * sec);
  CHECK(parse_time_arg("2d", t) == t - 2 * 86400 * sec);
  CHECK(parse_time_arg("2026-11-25T17:00:00Z", 0) == t);
  CHECK(parse_time_arg("3000w", t) == 0); // before 1970: the beginning
  CHECK(!parse_time_arg("100000w", t));   // more than a duration holds
  CHECK(!parse_time_arg("1x", t));
  CHECK(!parse_time_arg("-1h", t));
}

TEST_CASE("format_utc") {
  CHECK(format_utc(t) == "2026-11-25T17:00:00.000Z");
  CHECK(format_utc(t + 999'999'999) == "2026-11-25T17:00:00.999Z");
  CHECK(format_utc(0) == "1970-01-01T00:00:00.000Z");
  CHECK(parse_iso8601(format_utc(t + 123'000'000)) == t + 123'000'000);
}

TEST_CASE("canonical_proto_name: the spelling proto_name gives") {
  CHECK(canonical_proto_name("tcp") == "TCP");
  CHECK(canonical_proto_name("TCP") == "TCP");
  CHECK(canonical_proto_name("6") == "TCP");
  CHECK(canonical_proto_name("udp") == "UDP");
  CHECK(canonical_proto_name("icmpv6") == "ICMPv6");
  CHECK(canonical_proto_name("58") == "ICMPv6");
  CHECK(canonical_proto_name("udplite") == "UDPLite");
  CHECK(canonical_proto_name("47") == "47");
  CHECK(canonical_proto_name("0") == "0");
  CHECK(canonical_proto_name("arp") == "ARP");
  CHECK(canonical_proto_name("stp") == "STP");
  CHECK(canonical_proto_name("0x0806") == "ARP");
  CHECK(canonical_proto_name("0x88B5") == "0x88b5");
  CHECK(canonical_proto_name("snap-0x2000") == "CDP");
  CHECK(canonical_proto_name("SNAP-0x1234") == "SNAP-0x1234");
  for (const char *bad : {"", "foo", "256", "-1", "6a", "0x", "0x12345", "0xg1", "snap-", "1000"})
    CHECK_MESSAGE(!canonical_proto_name(bad), bad);
}
