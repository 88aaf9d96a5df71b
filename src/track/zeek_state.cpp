#include "track/zeek_state.h"

#include "util/hash.h"

#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace tcflows {
namespace {

constexpr uint8_t icmp_echo_reply = 0;
constexpr uint8_t icmp_echo_request = 8;
constexpr uint8_t icmpv6_echo_request = 128;
constexpr uint8_t icmpv6_echo_reply = 129;

// The history letters of TCP in the order they are written within a packet.
struct Letter {
  uint8_t bit;
  char letter;
};
constexpr std::array tcp_letters{
    Letter{TCF_SEEN_SYN, 's'},  Letter{TCF_SEEN_SYNACK, 'h'}, Letter{TCF_SEEN_PUREACK, 'a'},
    Letter{TCF_SEEN_DATA, 'd'}, Letter{TCF_SEEN_FIN, 'f'},    Letter{TCF_SEEN_RST, 'r'},
};

// Place of a first occurrence in the canonical order of a connection:
// handshake, acknowledgements and data (originator first), FINs, RSTs.
struct Rank {
  uint8_t bit;
  int by_orig;
  int by_resp;
};
constexpr std::array ranks{
    Rank{TCF_SEEN_SYN, 0, 1},     Rank{TCF_SEEN_SYNACK, 3, 2}, Rank{TCF_SEEN_ACK, 4, 7},
    Rank{TCF_SEEN_PUREACK, 5, 8}, Rank{TCF_SEEN_DATA, 6, 9},   Rank{TCF_SEEN_FIN, 10, 11},
    Rank{TCF_SEEN_RST, 12, 13},
};

// A packet with nothing else to tell ranks with data.
int bit_rank(uint8_t bit, bool by_orig) {
  for (const auto &r : ranks)
    if (r.bit == bit)
      return by_orig ? r.by_orig : r.by_resp;
  return bit_rank(TCF_SEEN_DATA, by_orig);
}

int step_rank(const SeenStep &step, int orig) {
  bool by_orig = step.dir == orig;
  uint8_t letters = step.bits & ~TCF_SEEN_PKT;
  if (!letters)
    return bit_rank(TCF_SEEN_PKT, by_orig);
  int rank = 100;
  for (int i = 0; i < 8; i++)
    if (letters & (1u << i))
      rank = std::min(rank, bit_rank(1u << i, by_orig));
  return rank;
}

// One side's bits no event reported, one untimed step per bit in rank order;
// the first packet (TCF_SEEN_PKT) goes with the earliest of them.
void add_missing(std::vector<SeenStep> &out, uint8_t missing, uint8_t dir) {
  size_t first = out.size();
  for (const auto &r : ranks)
    if (missing & r.bit)
      out.push_back({0, dir, r.bit, false});
  if (!(missing & TCF_SEEN_PKT))
    return;
  if (out.size() > first)
    out[first].bits |= TCF_SEEN_PKT;
  else
    out.push_back({0, dir, TCF_SEEN_PKT, false});
}

// Zeek's TCP endpoint states (TCP_ENDPOINT_*).
enum class Ep { inactive, syn_sent, syn_ack_sent, partial, established, closed, reset };

struct Endpoint {
  Ep state = Ep::inactive;
  Ep prev = Ep::inactive;
  bool data = false; // sent payload (Zeek: size > 0)
  bool ack = false;  // has sent a packet with ACK
  void set(Ep s) {
    prev = state;
    state = s;
  }
};

// What a step tells about its packet's TCP flags.
struct Flags {
  bool syn = false; // SYN, with or without ACK
  bool ack = false;
  bool fin = false;
  bool rst = false;
  bool data = false;
};

Flags flags_of(const SeenStep &step, const Endpoint &sender) {
  Flags f;
  f.syn = step.bits & (TCF_SEEN_SYN | TCF_SEEN_SYNACK);
  if (f.syn)
    f.ack = step.bits & TCF_SEEN_SYNACK;
  else // after its first ACK a TCP endpoint sets ACK on every packet
    f.ack = (step.bits & (TCF_SEEN_ACK | TCF_SEEN_PUREACK)) || sender.ack;
  f.fin = step.bits & TCF_SEEN_FIN;
  f.rst = step.bits & TCF_SEEN_RST;
  f.data = step.bits & TCF_SEEN_DATA;
  return f;
}

// The transitions of Zeek's TCP analyzer (UpdateStateMachine), for the
// packets the first occurrences stand for.
void from_inactive(Endpoint &me, Endpoint &peer, bool is_orig, const Flags &f, Ep orig_state) {
  if (f.syn) {
    if (is_orig) {
      me.set(f.ack ? Ep::syn_ack_sent : Ep::syn_sent);
    } else {
      if (peer.state == Ep::syn_sent)
        peer.set(Ep::established);
      me.set(Ep::established);
    }
  }
  if (f.fin)
    me.set(Ep::closed);
  if (f.rst)
    me.set(Ep::reset);
  if (me.state != Ep::inactive)
    return;
  if (!is_orig && !f.data && orig_state == Ep::syn_sent)
    return; // an ACK of the SYN ahead of the SYN/ACK does not make a partial connection
  if (f.ack && peer.state == Ep::established)
    me.set(Ep::established); // the SYN was missed, the handshake completes
  else
    me.set(Ep::partial);
}

void from_established(Endpoint &me, Endpoint &peer, const Flags &f) {
  if (f.syn && !f.ack && me.state == Ep::partial && peer.state == Ep::inactive)
    me.set(Ep::syn_sent);
  if (f.fin && !f.rst) {
    me.set(Ep::closed);
    if (peer.state == Ep::reset && peer.prev == Ep::closed)
      peer.set(Ep::closed); // a FIN then RST from the peer was a normal close
  }
  if (f.rst)
    me.set(Ep::reset);
}

void advance(Endpoint &me, Endpoint &peer, bool is_orig, const Flags &f, Ep orig_state) {
  switch (me.state) {
  case Ep::inactive:
    from_inactive(me, peer, is_orig, f, orig_state);
    break;
  case Ep::syn_sent:
  case Ep::syn_ack_sent:
    if (f.fin)
      me.set(Ep::closed);
    if (f.rst)
      me.set(Ep::reset);
    break;
  case Ep::partial:
  case Ep::established:
    from_established(me, peer, f);
    break;
  case Ep::closed:
    // A RST after the FIN exchange does not change a finished connection.
    if (f.rst && peer.state != Ep::closed)
      me.set(Ep::reset);
    break;
  case Ep::reset:
    break;
  }
}

// Zeek's RSTOS0 test: the history matches /^\^?S[^HAFGIQ]*R.*/.
bool syn_then_reset(const std::string &history) {
  size_t i = !history.empty() && history[0] == '^' ? 1 : 0;
  if (i >= history.size() || history[i] != 'S')
    return false;
  for (i++; i < history.size(); i++) {
    if (history[i] == 'R')
      return true;
    if (std::strchr("HAFGIQ", history[i]))
      return false;
  }
  return false;
}

bool inactive(Ep s) { return s == Ep::inactive || s == Ep::partial; }

// Zeek's conn_state() for TCP (base/protocols/conn/main.zeek).
ConnState tcp_state_name(const Endpoint &o, const Endpoint &r, const std::string &history) {
  if (r.state == Ep::reset) {
    if (o.state == Ep::syn_sent || o.state == Ep::syn_ack_sent ||
        (o.state == Ep::reset && !o.data && !r.data))
      return ConnState::REJ;
    return inactive(o.state) ? ConnState::RSTRH : ConnState::RSTR;
  }
  if (o.state == Ep::reset) {
    if (inactive(r.state))
      return syn_then_reset(history) ? ConnState::RSTOS0 : ConnState::OTH;
    return ConnState::RSTO;
  }
  if (o.state == Ep::closed && r.state == Ep::closed)
    return ConnState::SF;
  if (o.state == Ep::closed)
    return inactive(r.state) ? ConnState::SH : ConnState::S2;
  if (r.state == Ep::closed)
    return inactive(o.state) ? ConnState::SHR : ConnState::S3;
  if (o.state == Ep::syn_sent && r.state == Ep::inactive)
    return ConnState::S0;
  if (o.state == Ep::established && r.state == Ep::established)
    return ConnState::S1;
  return ConnState::OTH;
}

const SeenStep *first_timed(std::span<const SeenStep> steps, int dir, uint8_t bit) {
  for (const auto &step : steps)
    if (step.dir == dir && (step.bits & bit))
      return step.timed ? &step : nullptr;
  return nullptr;
}

// The side whose earliest timed event carries `bit`, or -1.
int earliest_sender(std::span<const SeenStep> events, uint8_t bit) {
  const SeenStep *best = nullptr;
  for (const auto &e : events)
    if ((e.bits & bit) && (!best || e.ts_ns < best->ts_ns))
      best = &e;
  return best ? best->dir & 1 : -1;
}

Orientation by_ports(const tcf_flow_key &key, int first) {
  int server = key.kind == TCF_KIND_PORTS ? likely_server_side(key.port[0], key.port[1]) : -1;
  return {server >= 0 ? 1 - server : first, true, false};
}

Orientation tcp_orientation(const tcf_flow_key &key, uint32_t seen, int first,
                            std::span<const SeenStep> events) {
  bool syn[2] = {bool(dir_bits(seen, 0) & TCF_SEEN_SYN), bool(dir_bits(seen, 1) & TCF_SEEN_SYN)};
  bool synack[2] = {bool(dir_bits(seen, 0) & TCF_SEEN_SYNACK),
                    bool(dir_bits(seen, 1) & TCF_SEEN_SYNACK)};
  if (syn[0] != syn[1])
    return {syn[0] ? 0 : 1};
  if (syn[0]) { // simultaneous open: the first SYN
    int side = earliest_sender(events, TCF_SEEN_SYN);
    return {side >= 0 ? side : first};
  }
  if (synack[0] != synack[1])
    return {synack[0] ? 1 : 0};
  if (synack[0]) {
    int side = earliest_sender(events, TCF_SEEN_SYNACK);
    if (side >= 0)
      return {1 - side};
  }
  return by_ports(key, first);
}

bool is_echo_reply(const tcf_flow_key &key, uint8_t type) {
  return type == (key.proto == IPPROTO_ICMPV6 ? icmpv6_echo_reply : icmp_echo_reply);
}

// The splitmix64 finalizer: well-mixed high bits from an FNV-1a hash.
uint64_t mix(uint64_t hash) {
  hash ^= hash >> 30;
  hash *= 0xbf58476d1ce4e5b9ull;
  hash ^= hash >> 27;
  hash *= 0x94d049bb133111ebull;
  return hash ^ (hash >> 31);
}

// Most significant digit first: the alphabet is in ASCII order, so uids sort
// as their numbers do.
void put_base62(char *out, uint64_t value, int digits) {
  static constexpr char alphabet[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  for (int i = digits - 1; i >= 0; i--) {
    out[i] = alphabet[value % 62];
    value /= 62;
  }
}

} // namespace

bool is_tcp(const tcf_flow_key &key) {
  return key.proto == IPPROTO_TCP && key.kind == TCF_KIND_PORTS;
}

int likely_server_side(uint16_t port0, uint16_t port1) {
  constexpr uint16_t well_known_end = 1024, ephemeral_start = 32768;
  bool known0 = port0 < well_known_end, known1 = port1 < well_known_end;
  if (known0 != known1)
    return known0 ? 0 : 1;
  bool eph0 = port0 >= ephemeral_start, eph1 = port1 >= ephemeral_start;
  if (eph0 != eph1)
    return eph0 ? 1 : 0;
  return -1;
}

Orientation decide_orientation(const tcf_flow_key &key, const tcf_flow_val &val, uint32_t seen,
                               std::span<const SeenStep> events) {
  int first = val.first_dir & 1;
  Orientation o;
  if (is_tcp(key))
    o = tcp_orientation(key, seen, first, events);
  else if (key.kind == TCF_KIND_ICMP_ECHO)
    o = {is_echo_reply(key, val.icmp_type) ? 1 - first : first};
  else if (key.kind == TCF_KIND_ICMP)
    o = {first};
  else if (key.kind == TCF_KIND_PORTS)
    o = by_ports(key, first);
  else
    o = {first, true};
  o.flipped = o.orig != first;
  return o;
}

std::vector<SeenStep> order_steps(std::span<const SeenStep> events, uint32_t seen, int orig) {
  std::vector<SeenStep> steps;
  uint8_t covered[2] = {0, 0};
  for (const auto &e : events) {
    if (!e.bits)
      continue;
    steps.push_back({e.ts_ns, uint8_t(e.dir & 1), e.bits, true});
    covered[e.dir & 1] |= e.bits;
  }
  std::stable_sort(steps.begin(), steps.end(), [orig](const SeenStep &a, const SeenStep &b) {
    if (a.ts_ns != b.ts_ns)
      return a.ts_ns < b.ts_ns;
    return step_rank(a, orig) < step_rank(b, orig);
  });

  std::vector<SeenStep> missing;
  for (uint8_t dir : {0, 1})
    add_missing(missing, dir_bits(seen, dir) & ~covered[dir], dir);
  std::stable_sort(missing.begin(), missing.end(), [orig](const SeenStep &a, const SeenStep &b) {
    return step_rank(a, orig) < step_rank(b, orig);
  });
  for (const auto &step : missing) {
    int rank = step_rank(step, orig);
    auto at = std::find_if(steps.begin(), steps.end(),
                           [&](const SeenStep &s) { return step_rank(s, orig) > rank; });
    steps.insert(at, step);
  }
  return steps;
}

std::string zeek_history(std::span<const SeenStep> steps, int orig, bool tcp, bool flipped) {
  std::string history = flipped ? "^" : "";
  uint8_t written[2] = {0, 0};
  for (const auto &step : steps) {
    int dir = step.dir & 1;
    auto put = [&](uint8_t bit, char letter) {
      if (!(step.bits & bit) || (written[dir] & bit))
        return;
      written[dir] |= bit;
      history += dir == orig ? char(letter - 'a' + 'A') : letter;
    };
    if (!tcp) {
      put(TCF_SEEN_PKT, 'd');
      continue;
    }
    for (const auto &l : tcp_letters)
      put(l.bit, l.letter);
  }
  return history;
}

ConnState tcp_conn_state(std::span<const SeenStep> steps, int orig) {
  Endpoint ep[2];
  for (const auto &step : steps) {
    int dir = step.dir & 1;
    Endpoint &me = ep[dir];
    Flags f = flags_of(step, me);
    advance(me, ep[1 - dir], dir == orig, f, ep[orig].state);
    me.data |= f.data;
    me.ack |= f.ack;
  }
  return tcp_state_name(ep[orig], ep[1 - orig], zeek_history(steps, orig, true, false));
}

ConnState udp_conn_state(uint32_t seen, int orig) {
  bool o = dir_bits(seen, orig) & TCF_SEEN_PKT;
  bool r = dir_bits(seen, 1 - orig) & TCF_SEEN_PKT;
  if (o)
    return r ? ConnState::SF : ConnState::S0;
  return r ? ConnState::SHR : ConnState::OTH;
}

std::optional<uint64_t> handshake_rtt(std::span<const SeenStep> steps, int orig) {
  const SeenStep *syn = first_timed(steps, orig, TCF_SEEN_SYN);
  const SeenStep *synack = first_timed(steps, 1 - orig, TCF_SEEN_SYNACK);
  const SeenStep *ack = first_timed(steps, orig, TCF_SEEN_ACK);
  if (!syn || !synack || !ack)
    return std::nullopt;
  if (syn->ts_ns > synack->ts_ns || synack->ts_ns > ack->ts_ns)
    return std::nullopt;
  return ack->ts_ns - syn->ts_ns;
}

std::optional<CloseReason> closed_by(std::span<const SeenStep> steps) {
  bool fin[2] = {false, false};
  for (const auto &step : steps) {
    if (step.bits & TCF_SEEN_RST)
      return CloseReason::rst;
    fin[step.dir & 1] |= bool(step.bits & TCF_SEEN_FIN);
    if (fin[0] && fin[1])
      return CloseReason::fin;
  }
  return std::nullopt;
}

bool seen_closed(uint32_t seen) {
  if ((dir_bits(seen, 0) | dir_bits(seen, 1)) & TCF_SEEN_RST)
    return true;
  return (dir_bits(seen, 0) & TCF_SEEN_FIN) && (dir_bits(seen, 1) & TCF_SEEN_FIN);
}

ZeekView zeek_view(const tcf_flow_key &key, uint32_t seen, std::span<const SeenStep> events,
                   const Orientation &orientation) {
  int orig = orientation.orig;
  bool tcp = is_tcp(key);
  auto steps = order_steps(events, seen, orig);
  ZeekView view;
  view.history = History(zeek_history(steps, orig, tcp, orientation.flipped));
  if (tcp) {
    view.state = tcp_conn_state(steps, orig);
    view.rtt_ns = handshake_rtt(steps, orig);
    view.closed_by = closed_by(steps);
  } else if (key.proto == IPPROTO_UDP || key.proto == IPPROTO_UDPLITE) {
    view.state = udp_conn_state(seen, orig);
  } else {
    view.state = ConnState::OTH; // Zeek's conn_state for ICMP and everything else
  }
  return view;
}

Ports zeek_ports(const tcf_flow_key &key, const tcf_flow_val &val, int orig) {
  switch (key.kind) {
  case TCF_KIND_PORTS:
    return {key.port[orig], key.port[1 - orig]};
  case TCF_KIND_ICMP_ECHO:
    if (is_echo_reply(key, val.icmp_type))
      return {key.proto == IPPROTO_ICMPV6 ? icmpv6_echo_request : icmp_echo_request, 0};
    return {val.icmp_type, val.icmp_code};
  case TCF_KIND_ICMP:
    return {val.icmp_type, val.icmp_code};
  default:
    return {};
  }
}

Uid conn_uid(const tcf_flow_key &key, uint64_t first_ns, uint32_t gen, uint64_t salt) {
  uint64_t hash = fnv1a(bytes_of(key));
  for (auto part : {bytes_of(first_ns), bytes_of(gen), bytes_of(salt)})
    hash = fnv1a(part, hash);
  Uid uid;
  uid.chars[0] = 'C';
  put_base62(&uid.chars[1], first_ns / 1000, 9);     // µs: 62^9 µs is over 400 years
  constexpr uint64_t base62_8 = 218'340'105'584'896; // 62^8
  put_base62(&uid.chars[10], mix(hash) % base62_8, 8);
  return uid;
}

} // namespace tcflows
