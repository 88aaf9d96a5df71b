// One connection as tcflows reports it: what the tracker produces and the
// JSONL writer, the SQLite store and the IPFIX exporter consume.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace tcflows {

// The record of one connection, in the shape of Zeek's conn.log. The
// originator (src_*) is who sent the SYN (or the echo request); for flows
// first seen mid-stream it is guessed from the ports and `orig_guessed` says so.
struct ConnRecord {
  std::string uid;      // stable id of this connection, also across agent restarts
  std::string iface;    // interface name
  uint32_t ifindex = 0; // its index when the connection was seen
  std::string proto;    // "TCP", "UDP", "ICMP", "ICMPv6", "SCTP", "47", "ARP", ...
  std::string src_addr;
  uint16_t src_port = 0; // for ICMP: the originator's ICMP type (Zeek's convention)
  std::string dst_addr;
  uint16_t dst_port = 0; // for ICMP: the ICMP code
  uint16_t vlan = 0;     // outer VLAN id, 0 when untagged
  uint64_t start_ns = 0; // Unix epoch nanoseconds, UTC
  uint64_t end_ns = 0;   // time of the last packet so far
  uint64_t orig_pkts = 0;
  uint64_t orig_bytes = 0; // IP-level bytes (frame bytes for link-layer flows)
  uint64_t resp_pkts = 0;
  uint64_t resp_bytes = 0;
  std::string state;   // Zeek conn_state: S0 S1 SF REJ S2 S3 RSTO RSTR RSTOS0 RSTRH SH SHR OTH
  std::string history; // Zeek history letters: upper case originator, lower case responder
  std::optional<std::string> close_reason; // "fin", "rst", "idle", "shutdown"; none while open
  std::optional<uint64_t> rtt_ns;          // SYN to the ACK completing the handshake
  uint8_t orig_tcp_flags = 0;              // OR of the TCP flags the originator sent
  uint8_t resp_tcp_flags = 0;              // and the responder
  bool orig_guessed = false;               // originator from the port heuristic
  bool orig_ingress = false; // the originator's packets arrive at TC ingress (else leave at egress)
};

// Traffic of one connection in one interval [from_ns, to_ns).
struct TrafficDelta {
  uint64_t from_ns = 0;
  uint64_t to_ns = 0;
  uint64_t orig_pkts = 0;
  uint64_t orig_bytes = 0;
  uint64_t resp_pkts = 0;
  uint64_t resp_bytes = 0;
};

// What the tracker hands on at every interval for each connection that
// changed: the record as it stands (a checkpoint while open, final once
// close_reason is set) and the traffic since the previous update.
struct ConnUpdate {
  ConnRecord record;
  TrafficDelta delta;
  bool final() const { return record.close_reason.has_value(); }
};

// A connection a database holds as open: the counters an earlier agent last
// wrote for it. A restarted agent counts on from them, so that a connection
// it adopts is neither recorded twice nor its traffic counted twice.
struct StoredOpenConn {
  std::string uid;
  uint64_t orig_pkts = 0;
  uint64_t orig_bytes = 0;
  uint64_t resp_pkts = 0;
  uint64_t resp_bytes = 0;
  uint64_t checkpoint_ns = 0; // the time its traffic was last counted up to
};

} // namespace tcflows
