// Flow keys as people read them: protocol names, addresses, endpoints.
#pragma once

#include "kernel/abi.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tcflows {

// "TCP", "UDP", "ICMP", "ICMPv6", "SCTP", the IANA number for other IP
// protocols, or the link-layer type ("ARP", "LLDP", "STP", "0x88b5").
std::string proto_name(const tcf_flow_key &key);

// The IP protocol number of a proto_name() of an IP flow ("TCP" → 6, "47" →
// 47); nullopt for link-layer names.
std::optional<uint8_t> ip_protocol_number(std::string_view name);

// The spelling proto_name() gives a protocol typed in any case or as its IP
// protocol number ("tcp", "6" -> "TCP"; "icmpv6" -> "ICMPv6"; "47" -> "47";
// "arp" -> "ARP"; "0x88B5" -> "0x88b5"). nullopt for what proto_name never gives.
std::optional<std::string> canonical_proto_name(std::string_view text);

// Address of endpoint `side` (0 or 1) in canonical text: dotted IPv4,
// RFC 5952 IPv6, or a colon-separated MAC for link-layer flows.
std::string addr_text(const tcf_flow_key &key, int side);

// Whether the key's ports are transport ports (TCP, UDP, SCTP, ...).
bool has_transport_ports(const tcf_flow_key &key);

// "10.0.2.15:443", "[2001:db8::1]:443", or the bare address without ports.
std::string endpoint_text(const tcf_flow_key &key, int side);

// What the TC program does to a key: order the endpoints, lower first.
// Returns the direction (TCF_DIR_*) of the key as it was given.
int canonicalise(tcf_flow_key &key);

bool operator==(const tcf_flow_key &a, const tcf_flow_key &b);

struct FlowKeyHash {
  size_t operator()(const tcf_flow_key &key) const;
};

} // namespace tcflows
