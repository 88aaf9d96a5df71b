// Shorthands shared by the fixture tables.
#pragma once

#include "harness.h"

#include <netinet/in.h>

#include <string_view>

namespace tcflows::test {

inline constexpr std::string_view a4 = "10.0.0.1", b4 = "10.0.0.2";
inline constexpr std::string_view a6 = "2001:db8::1", b6 = "2001:db8::2";

inline constexpr Mac broadcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
inline constexpr Mac lldp_mac = {0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e};
inline constexpr Mac stp_mac = {0x01, 0x80, 0xc2, 0x00, 0x00, 0x00};
inline constexpr Mac cdp_mac = {0x01, 0x00, 0x0c, 0xcc, 0xcc, 0xcc};

inline constexpr size_t eth_len = 14;

// Ethernet + IPv4 a4 -> b4, or Ethernet + IPv6 a6 -> b6.
inline PacketBuilder v4(Ipv4Opts opts = {}) { return PacketBuilder().eth().ipv4(a4, b4, opts); }
inline PacketBuilder v6(Ipv6Opts opts = {}) { return PacketBuilder().eth().ipv6(a6, b6, opts); }
// The same, from b to a.
inline PacketBuilder v4_back(Ipv4Opts opts = {}) {
  return PacketBuilder().eth(mac_b, mac_a).ipv4(b4, a4, opts);
}
inline PacketBuilder v6_back(Ipv6Opts opts = {}) {
  return PacketBuilder().eth(mac_b, mac_a).ipv6(b6, a6, opts);
}

// One packet of `bytes` from endpoint 0 to 1 (fwd) or back (rev).
inline ExpectedFlow fwd(const tcf_flow_key &key, uint64_t bytes) {
  return {key, {1, 0}, {bytes, 0}};
}
inline ExpectedFlow rev(const tcf_flow_key &key, uint64_t bytes) {
  return {key, {0, 1}, {0, bytes}};
}

inline tcf_flow_key tcp4(uint16_t pa, uint16_t pb) { return ip4_key(IPPROTO_TCP, a4, pa, b4, pb); }
inline tcf_flow_key udp4(uint16_t pa, uint16_t pb) { return ip4_key(IPPROTO_UDP, a4, pa, b4, pb); }
inline tcf_flow_key tcp6(uint16_t pa, uint16_t pb) { return ip6_key(IPPROTO_TCP, a6, pa, b6, pb); }
inline tcf_flow_key udp6(uint16_t pa, uint16_t pb) { return ip6_key(IPPROTO_UDP, a6, pa, b6, pb); }

inline void check_rows(const std::vector<Row> &rows) {
  for (const Row &row : rows)
    check_row(row);
}

} // namespace tcflows::test
