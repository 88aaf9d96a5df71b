// Zeek's view of one connection, derived from what the TC program records:
// the first-occurrence bits per direction (tcf_flow_val.seen) and the
// ring-buffer events that timed them. Pure functions, no state.
//
// Directions here are canonical (TCF_DIR_FWD = from key side 0 to side 1);
// `orig` is the key side (0 or 1) of the originator.
#pragma once

#include "kernel/abi.h"
#include "track/conn.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace tcflows {

// The first occurrence of `bits` (enum tcf_seen) from key side `dir`: a
// packet an event reported (timed), or, when that event was lost, one
// placed by the canonical order (untimed, ts_ns meaningless).
struct SeenStep {
  uint64_t ts_ns = 0;
  uint8_t dir = 0;
  uint8_t bits = 0;
  bool timed = true;
};

// The seen bits of one direction.
constexpr uint8_t dir_bits(uint32_t seen, int dir) { return (seen >> (8 * dir)) & 0xff; }

// TCP with ports: the protocol whose flags the seen bits describe.
bool is_tcp(const tcf_flow_key &key);

// The side (0 or 1) whose port looks like a server's, or -1 when the ports
// do not tell: a port below 1024 against one that is not, else a port below
// the ephemeral range (32768) against one in it.
int likely_server_side(uint16_t port0, uint16_t port1);

struct Orientation {
  int orig = 0;         // key side of the originator
  bool guessed = false; // chosen by the port heuristic (or first sender)
  bool flipped = false; // the first packet came from the responder ('^')
};

// Who originated the connection: the SYN sender; the peer of a SYN/ACK
// sender; the sender of an ICMP echo request or other ICMP message; else the
// port heuristic, falling back to the first packet's sender (guessed).
// `seen` is the value's bits together with those of the events.
Orientation decide_orientation(const tcf_flow_key &key, const tcf_flow_val &val, uint32_t seen,
                               std::span<const SeenStep> events);

// The connection's first occurrences in order: the events' by time, and the
// bits of `seen` no event reported inserted at their place in a canonical
// order (SYN, SYN/ACK, ACK, data, FIN, RST; originator before responder).
std::vector<SeenStep> order_steps(std::span<const SeenStep> events, uint32_t seen, int orig);

// Zeek's history: s h a d f r for TCP (upper case originator, lower case
// responder, each at most once per direction), 'd' for any packet of other
// protocols (as Zeek does for UDP), '^' first when `flipped`.
std::string zeek_history(std::span<const SeenStep> steps, int orig, bool tcp, bool flipped);

// Zeek's conn_state of a TCP connection, from its ordered steps.
ConnState tcp_conn_state(std::span<const SeenStep> steps, int orig);

// Zeek's conn_state of a UDP flow: S0, SF, SHR (only the responder sent) or OTH.
ConnState udp_conn_state(uint32_t seen, int orig);

// Handshake RTT at the observation point: the originator's first ACK minus
// its first SYN, when both, and the SYN/ACK between them, were timed.
std::optional<uint64_t> handshake_rtt(std::span<const SeenStep> steps, int orig);

// Whether the TCP connection closed, and how: fin once both sides sent a
// FIN, rst once either sent a RST, whichever came first; none when open.
std::optional<CloseReason> closed_by(std::span<const SeenStep> steps);

// Whether the seen bits say closed (FIN both ways, or a RST): what the TC
// program checks before it starts a new connection on a SYN.
bool seen_closed(uint32_t seen);

struct ZeekView {
  ConnState state = ConnState::OTH;
  History history;
  std::optional<uint64_t> rtt_ns;
  std::optional<CloseReason> closed_by;
};

// Everything above for one connection.
ZeekView zeek_view(const tcf_flow_key &key, uint32_t seen, std::span<const SeenStep> events,
                   const Orientation &orientation);

// The record's ports: transport ports for TCP, UDP and the like; for ICMP
// Zeek's convention, the type of the originator's message and its code (an
// echo seen first as a reply has the request type and code 0); else 0.
struct Ports {
  uint16_t src = 0;
  uint16_t dst = 0;
};
Ports zeek_ports(const tcf_flow_key &key, const tcf_flow_val &val, int orig);

// A Zeek-like uid ("C" and 17 base62 characters) of the connection's
// identity: its first packet's time on the packet clock (9 characters, so
// that uids sort by start and a database index of them grows at its end),
// then a hash of the flow key, that time, the generation on the key and a
// salt that tells boots apart (the boot clock restarts). The same connection
// gets the same uid from any agent that reads the same maps.
Uid conn_uid(const tcf_flow_key &key, uint64_t first_ns, uint32_t gen, uint64_t salt);

} // namespace tcflows
