// Connection records as people write them, for the tests and tools that make
// records by hand: the text the sinks print. binary() turns one into the
// record the tracker would hand on (the canonical flow key, the originator's
// key side, enums); text_of() prints one back the way the sinks do.
#pragma once

#include "sinks/interfaces.h"
#include "track/conn.h"

#include <cstdint>
#include <optional>
#include <string>

namespace tcflows::test {

struct TextRecord {
  std::string uid;      // at most Uid::capacity characters
  std::string iface;    // an index is given to each name on first use (see interfaces())
  std::string proto;    // "TCP", "UDP", "ICMP", "ICMPv6", an IP protocol number, or "ARP"
  std::string src_addr; // IPv4, IPv6, or a MAC address for "ARP"
  uint16_t src_port = 0;
  std::string dst_addr;
  uint16_t dst_port = 0;
  uint16_t vlan = 0;
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;
  uint64_t orig_pkts = 0;
  uint64_t orig_bytes = 0;
  uint64_t resp_pkts = 0;
  uint64_t resp_bytes = 0;
  std::string state = "OTH";
  std::string history;
  std::optional<std::string> close_reason; // none while open
  std::optional<uint64_t> rtt_ns;
  uint8_t orig_tcp_flags = 0;
  uint8_t resp_tcp_flags = 0;
  bool orig_guessed = false;
  bool orig_ingress = false;
};

// Throws std::invalid_argument for text no record can hold (an unknown
// protocol, addresses of two families, a state Zeek does not have, ...).
ConnRecord binary(const TextRecord &text);

// The interface names binary() has numbered so far, for the sinks.
InterfacesSnapshot interfaces();

// A record as the sinks print it; interfaces by `names` (default: "if<N>").
TextRecord text_of(const ConnRecord &record, const InterfaceNames &names = {});

// A record and the traffic of one interval, with the interval as given.
ConnUpdate update_of(const TextRecord &text, const TrafficDelta &delta);

} // namespace tcflows::test
