// One connection as tcflows reports it: what the tracker produces and the
// JSONL writer, the SQLite store, the IPFIX exporter and the live table
// consume. Binary until a sink prints it: the flow key, protocol numbers and
// enums; text is made only where a sink writes text.
#pragma once

#include "kernel/abi.h"
#include "track/process.h"
#include "util/hash.h"
#include "util/shared_value.h"

#include <string.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tcflows {

// Zeek's conn_state.
enum class ConnState : uint8_t { S0, S1, SF, REJ, S2, S3, RSTO, RSTR, RSTOS0, RSTRH, SH, SHR, OTH };

// Why a connection's record is final; `open` while it is not.
enum class CloseReason : uint8_t {
  open,
  fin,      // FIN both ways
  rst,      // a RST either way
  idle,     // no packet for its protocol's idle timeout
  shutdown, // the agent stopped while it was open
  eof,      // the end of a capture read offline
};

std::string_view state_name(ConnState state);
std::optional<ConnState> parse_state(std::string_view text);
// "fin", "rst", "idle", "shutdown", "eof"; "" for open (and parsed back so).
std::string_view close_reason_name(CloseReason reason);
std::optional<CloseReason> parse_close_reason(std::string_view text);

// A connection's uid: "C" and 17 base62 characters (see conn_uid()), kept
// inline. Shorter uids (records made by hand in tests and tools) are padded
// with NULs.
struct Uid {
  static constexpr size_t capacity = 18;
  std::array<char, capacity> chars{};

  // nullopt when `text` is empty or longer than `capacity`.
  static std::optional<Uid> from(std::string_view text);
  std::string_view view() const { return {chars.data(), ::strnlen(chars.data(), capacity)}; }
  bool operator==(const Uid &) const = default;
  auto operator<=>(const Uid &o) const { return view() <=> o.view(); }
};

struct UidHash {
  size_t operator()(const Uid &uid) const { return fnv1a(uid.view()); }
};

// A connection's Community ID v1 (see track/community_id.h): the SHA-1
// digest; the text ("1:" and base64) is made where a sink writes it.
struct CommunityId {
  std::array<uint8_t, 20> digest{};
  bool operator==(const CommunityId &) const = default;
};

// Zeek history letters: at most 31, kept inline (no allocation per record).
class History {
public:
  static constexpr size_t capacity = 31;
  History() = default;
  // The first `capacity` letters of `letters`.
  explicit History(std::string_view letters) {
    for (char letter : letters)
      push_back(letter);
  }
  void push_back(char letter) {
    if (size_ < capacity)
      chars_[size_++] = letter;
  }
  std::string_view view() const { return {chars_.data(), size_}; }
  size_t size() const { return size_; }
  bool operator==(const History &o) const { return view() == o.view(); }

private:
  std::array<char, capacity> chars_{};
  uint8_t size_ = 0;
};

// TCP health of the segments one side sent, as seen where tcflows runs (see
// struct tcf_tcp_dir): what Wireshark's TCP analysis flags in a capture there.
struct TcpHealth {
  uint64_t retx_pkts = 0;    // retransmitted segments (wire packets)
  uint64_t retx_bytes = 0;   // their IP-level bytes
  uint64_t ooo_pkts = 0;     // segments out of order
  uint64_t zero_windows = 0; // segments advertising a zero window
  // Round trips from this side's segment to the peer's ACK of its end; 0 ns
  // when none.
  uint64_t rtt_samples = 0;
  uint64_t rtt_min_ns = 0;
  uint64_t rtt_mean_ns = 0;
  uint64_t rtt_max_ns = 0;
  bool operator==(const TcpHealth &) const = default;
};

// The record of one connection, in the shape of Zeek's conn.log. The
// originator (key side `orig`, what sinks print as src_*) is who sent the SYN
// (or the echo request); for flows first seen mid-stream it is guessed from
// the ports and `orig_guessed` says so. The interface is key.ifindex: sinks
// name it from the InterfaceNames handed over with the record.
struct ConnRecord {
  Uid uid;                 // stable id of this connection, also across agent restarts
  tcf_flow_key key{};      // canonical key: addresses, ports, protocol, ifindex, VLANs
  uint8_t orig = 0;        // the key side (0 or 1) of the originator
  uint16_t src_port = 0;   // Zeek's: the originator's port, or its ICMP type
  uint16_t dst_port = 0;   // the responder's port, or the ICMP code
  uint64_t start_ns = 0;   // Unix epoch nanoseconds, UTC
  uint64_t end_ns = 0;     // time of the last packet so far
  uint64_t orig_pkts = 0;  // wire packets
  uint64_t orig_bytes = 0; // IP-level bytes (frame bytes for link-layer flows)
  uint64_t resp_pkts = 0;
  uint64_t resp_bytes = 0;
  ConnState state = ConnState::OTH;
  History history; // upper case originator, lower case responder
  CloseReason close_reason = CloseReason::open;
  std::optional<uint64_t> rtt_ns; // SYN to the ACK completing the handshake
  uint8_t orig_tcp_flags = 0;     // OR of the TCP flags the originator sent
  uint8_t resp_tcp_flags = 0;     // and the responder
  bool orig_guessed = false;      // originator from the port heuristic
  bool orig_ingress = false; // the originator's packets arrive at TC ingress (else leave at egress)
  std::optional<CommunityId> community_id; // none for link-layer flows and lone fragments
  // The fields below are kept behind pointers (SharedValue): the checkpoint
  // of a million open connections is a million records in flight.
  SharedValue<TcpHealth> orig_tcp; // TCP only: the originator's segments
  SharedValue<TcpHealth> resp_tcp; // and the responder's
  // The owner of the local socket (see track/process.h), shared by the
  // records of every connection of the process; none when no socket of this
  // host was seen using the connection (forwarded, or unattributed).
  SharedValue<ProcessOwner> process;

  uint32_t ifindex() const { return key.ifindex; }
  uint16_t vlan() const { return key.vlan[0]; } // outer VLAN id, 0 when untagged
  int resp() const { return 1 - orig; }
  bool final() const { return close_reason != CloseReason::open; }
};

// The TCP health fields as the sinks name them, the originator's first:
// "orig_retx_pkts", ..., "orig_rtt_max_ns", "resp_retx_pkts", ...: the
// database's columns, the JSON keys, in this order.
constexpr size_t tcp_health_count = 16;
const std::array<std::string, tcp_health_count> &tcp_health_columns();
// A record's values of them, in that order: none for other protocols, and
// none for the minimum, mean and maximum of a side without a round trip.
std::array<std::optional<uint64_t>, tcp_health_count> tcp_health_values(const ConnRecord &r);

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
  bool final() const { return record.final(); }
};

// A connection a database holds as open: the counters an earlier agent last
// wrote for it. A restarted agent counts on from them, so that a connection
// it adopts is neither recorded twice nor its traffic counted twice.
struct StoredOpenConn {
  Uid uid;
  uint64_t orig_pkts = 0;
  uint64_t orig_bytes = 0;
  uint64_t resp_pkts = 0;
  uint64_t resp_bytes = 0;
  uint64_t checkpoint_ns = 0; // the time its traffic was last counted up to
};

} // namespace tcflows
