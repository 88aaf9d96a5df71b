// Zeek's view of one connection, derived from what the TC program records
// in its slot: the first-occurrence bits per direction and their order
// (tcf_conn.marks and .order). Pure functions, no state.
//
// Directions here are canonical (TCF_DIR_FWD = from key side 0 to side 1);
// `orig` is the key side (0 or 1) of the originator.
#pragma once

#include "kernel/abi.h"
#include "track/conn.h"

#include <array>
#include <cstdint>
#include <optional>
#include <span>

namespace tcflows {

// The first occurrences one packet brought, in one direction: what history
// letters and conn_state are made of.
struct SeenStep {
  uint8_t dir = 0;  // key side of the sender
  uint8_t bits = 0; // enum tcf_seen
  bool operator==(const SeenStep &) const = default;
};

// A connection's steps in the order they happened: at most one per seen bit.
class Steps {
public:
  static constexpr size_t capacity = 16;
  void push_back(SeenStep step) {
    if (size_ < capacity)
      steps_[size_++] = step;
  }
  operator std::span<const SeenStep>() const { return {steps_.data(), size_}; }
  size_t size() const { return size_; }
  const SeenStep &operator[](size_t i) const { return steps_[i]; }
  const SeenStep *begin() const { return steps_.data(); }
  const SeenStep *end() const { return steps_.data() + size_; }

private:
  std::array<SeenStep, capacity> steps_{};
  size_t size_ = 0;
};

// The seen bits of one direction.
constexpr uint8_t dir_bits(uint32_t seen, int dir) { return (seen >> (8 * dir)) & 0xff; }

// The steps of a slot from its seen bits and their order (tcf_conn.marks and
// .order: each bit's rank is the number of bits seen before it).
Steps conn_steps(uint32_t marks, uint64_t order);

// One connection whose first packets landed in another slot: `earlier`'s
// steps, then those of `later` that bring bits not seen yet.
Steps join_steps(const Steps &earlier, const Steps &later);

// The seen bits of steps, per direction as in tcf_conn.marks.
uint32_t steps_seen(std::span<const SeenStep> steps);

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

// Who originated the connection: the SYN sender (the first, when both sent
// one); the peer of a SYN/ACK sender; the sender of an ICMP echo request or
// other ICMP message; else the port heuristic, falling back to the first
// packet's sender (guessed). `first_dir` is the first packet's sender,
// `icmp_type` the type of the first ICMP packet.
Orientation decide_orientation(const tcf_flow_key &key, int first_dir, uint8_t icmp_type,
                               std::span<const SeenStep> steps);

// The letters Zeek repeats in a TCP history, per canonical direction: 't'
// for retransmissions and 'w' for zero windows (enum tcf_health_letter),
// written at the 1st, 10th, 100th, ... occurrence. The 1st and 10th go where
// the program saw them (tcf_conn.health_order: how many seen bits came
// before); later ones, and all of them when not `ranked`, at the end.
struct HealthLetters {
  uint64_t count[2][2] = {};  // [letter][dir]
  uint8_t rank[2][2][2] = {}; // [letter][dir][10th]
  bool ranked = true;
};

// The health letters of a slot.
HealthLetters health_letters(const tcf_conn &c);

// Zeek's history: s h a d f r for TCP (upper case originator, lower case
// responder, each at most once per direction) with the health letters in
// between, 'd' for any packet of other protocols (as Zeek does for UDP), '^'
// first when `flipped`.
History zeek_history(std::span<const SeenStep> steps, int orig, bool tcp, bool flipped,
                     const HealthLetters &health = {});

// Zeek's conn_state of a TCP connection, from its ordered steps.
ConnState tcp_conn_state(std::span<const SeenStep> steps, int orig);

// Zeek's conn_state of a UDP flow: S0, SF, SHR (only the responder sent) or OTH.
ConnState udp_conn_state(uint32_t seen, int orig);

// Whether the TCP connection closed, and how: fin once both sides sent a
// FIN, rst once either sent a RST, whichever came first; none while open.
std::optional<CloseReason> closed_by(std::span<const SeenStep> steps);

// Whether the seen bits say closed (FIN both ways, or a RST): what the TC
// program checks before it starts a new connection on a SYN.
bool seen_closed(uint32_t seen);

// Handshake RTT at the observation point, from the originator's SYN (its
// first packet) to its ACK of the SYN/ACK, `ack_dt` ns later (tcf_conn).
std::optional<uint64_t> handshake_rtt(std::span<const SeenStep> steps, int orig, uint32_t ack_dt);

struct ZeekView {
  ConnState state = ConnState::OTH;
  History history;
  std::optional<CloseReason> closed_by;
};

// Everything above for one connection.
ZeekView zeek_view(const tcf_flow_key &key, std::span<const SeenStep> steps,
                   const Orientation &orientation, const HealthLetters &health = {});

// The record's ports: transport ports for TCP, UDP and the like; for ICMP
// Zeek's convention, the type of the originator's message and its code (an
// echo seen first as a reply has the request type and code 0); else 0.
struct Ports {
  uint16_t src = 0;
  uint16_t dst = 0;
};
Ports zeek_ports(const tcf_flow_key &key, uint8_t icmp_type, uint8_t icmp_code, int orig);

// A Zeek-like uid ("C" and 17 base62 characters) of the connection's
// identity: its first packet's time on the packet clock (9 characters, so
// that uids sort by start and a database index of them grows at its end),
// then a hash of the flow key, that time and a salt that tells boots apart
// (the boot clock restarts). The same connection gets the same uid from any
// agent that reads the same slot.
Uid conn_uid(const tcf_flow_key &key, uint64_t first_ns, uint64_t salt);

} // namespace tcflows
