// Community ID v1 (corelight/community-id-spec): a flow hash that other tools
// (Zeek, Suricata, Wireshark, Elastic) compute the same way, so a record can
// be found in their logs. SHA-1 over the seed, the two addresses, the IP
// protocol, a zero byte and the two ports, the lower endpoint first; shown
// as "1:" and the digest in base64.
#pragma once

#include "track/conn.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace tcflows {

// One packet's or flow's tuple as the spec hashes it: addresses in network
// order (4 or 16 bytes, both alike), ports in host order. `one_way`: an ICMP
// message without a counterpart, hashed as it goes (no reordering).
struct CommunityTuple {
  std::span<const uint8_t> src_addr;
  std::span<const uint8_t> dst_addr;
  uint8_t proto = 0;
  bool has_ports = false; // TCP, UDP, SCTP, ICMP, ICMPv6: the spec hashes no others'
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  bool one_way = false;
};

CommunityId community_id(const CommunityTuple &tuple, uint16_t seed);

// The ports the spec gives an ICMP or ICMPv6 message (`icmpv6`): its type,
// and the type of its counterpart (echo reply for a request, and so on), or
// its code and one_way for a message without one.
struct IcmpPorts {
  uint16_t src = 0;
  uint16_t dst = 0;
  bool one_way = false;
};
IcmpPorts icmp_ports(bool icmpv6, uint8_t type, uint8_t code);

// The record's: originator first, as the spec orders it; nullopt for
// link-layer flows and fragments whose transport header was not seen.
std::optional<CommunityId> community_id(const ConnRecord &record, uint16_t seed);

// "1:" and the base64 of the digest.
std::string community_id_text(const CommunityId &id);

} // namespace tcflows
