#include "track/zeek_state.h"

#include "util/hash.h"

#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <bit>
#include <climits>
#include <cstring>
#include <vector>

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
bool syn_then_reset(std::string_view history) {
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
ConnState tcp_state_name(const Endpoint &o, const Endpoint &r, std::string_view history) {
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

// The side of the first step that carries `bit`, or -1.
int first_sender(std::span<const SeenStep> steps, uint8_t bit) {
  for (const auto &step : steps)
    if (step.bits & bit)
      return step.dir & 1;
  return -1;
}

Orientation by_ports(const tcf_flow_key &key, int first) {
  int server = key.kind == TCF_KIND_PORTS ? likely_server_side(key.port[0], key.port[1]) : -1;
  return {server >= 0 ? 1 - server : first, true, false};
}

Orientation tcp_orientation(const tcf_flow_key &key, int first, std::span<const SeenStep> steps) {
  uint32_t seen = steps_seen(steps);
  bool syn[2] = {bool(dir_bits(seen, 0) & TCF_SEEN_SYN), bool(dir_bits(seen, 1) & TCF_SEEN_SYN)};
  bool synack[2] = {bool(dir_bits(seen, 0) & TCF_SEEN_SYNACK),
                    bool(dir_bits(seen, 1) & TCF_SEEN_SYNACK)};
  if (syn[0] != syn[1])
    return {syn[0] ? 0 : 1};
  if (syn[0]) // simultaneous open: the first SYN
    return {first_sender(steps, TCF_SEEN_SYN)};
  if (synack[0] != synack[1])
    return {synack[0] ? 1 : 0};
  if (synack[0])
    return {1 - first_sender(steps, TCF_SEEN_SYNACK)};
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
void append_base62(char *out, uint64_t value, int digits) {
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

Orientation decide_orientation(const tcf_flow_key &key, int first_dir, uint8_t icmp_type,
                               std::span<const SeenStep> steps) {
  int first = first_dir & 1;
  Orientation o;
  if (is_tcp(key))
    o = tcp_orientation(key, first, steps);
  else if (key.kind == TCF_KIND_ICMP_ECHO)
    o = {is_echo_reply(key, icmp_type) ? 1 - first : first};
  else if (key.kind == TCF_KIND_ICMP)
    o = {first};
  else if (key.kind == TCF_KIND_PORTS)
    o = by_ports(key, first);
  else
    o = {first, true};
  o.flipped = o.orig != first;
  return o;
}

Steps conn_steps(uint32_t marks, uint64_t order) {
  // Each seen bit by rank; the bits of one rank came with one packet.
  std::array<SeenStep, 16> by_rank{};
  std::array<bool, 16> used{};
  for (int i = 0; i < 16; i++) {
    if (!(marks & (1u << i)))
      continue;
    int rank = int((order >> (4 * i)) & 0xf);
    by_rank[rank].dir = uint8_t(i / 8);
    by_rank[rank].bits |= uint8_t(1u << (i % 8));
    used[rank] = true;
  }
  Steps steps;
  for (int rank = 0; rank < 16; rank++)
    if (used[rank])
      steps.push_back(by_rank[rank]);
  return steps;
}

Steps join_steps(const Steps &earlier, const Steps &later) {
  Steps steps = earlier;
  uint32_t seen = steps_seen(earlier);
  for (const auto &step : later) {
    uint8_t fresh = step.bits & ~dir_bits(seen, step.dir);
    if (!fresh)
      continue;
    steps.push_back({step.dir, fresh});
    seen |= uint32_t(fresh) << (8 * step.dir);
  }
  return steps;
}

uint32_t steps_seen(std::span<const SeenStep> steps) {
  uint32_t seen = 0;
  for (const auto &step : steps)
    seen |= uint32_t(step.bits) << (8 * (step.dir & 1));
  return seen;
}

namespace {

// One occurrence of a health letter that goes into the history.
struct HealthMark {
  unsigned rank; // seen bits before it; UINT_MAX: at the end
  uint64_t nth;  // the occurrence: 1, 10, 100, ...
  char letter;
  uint8_t dir;
};

std::vector<HealthMark> health_marks(const HealthLetters &h) {
  constexpr char letters[2] = {'t', 'w'};
  std::vector<HealthMark> marks;
  for (int l = 0; l < 2; l++)
    for (uint8_t d = 0; d < 2; d++)
      for (uint64_t nth = 1, i = 0; nth <= h.count[l][d]; nth *= 10, i++) {
        unsigned rank = h.ranked && i < 2 ? h.rank[l][d][i] : UINT_MAX;
        marks.push_back({rank, nth, letters[l], d});
      }
  std::stable_sort(marks.begin(), marks.end(), [](const HealthMark &a, const HealthMark &b) {
    return a.rank != b.rank ? a.rank < b.rank : a.nth < b.nth;
  });
  return marks;
}

} // namespace

HealthLetters health_letters(const tcf_conn &c) {
  HealthLetters h;
  for (int d = 0; d < 2; d++) {
    h.count[TCF_HEALTH_RETX][d] = c.tcp[d].retx_pkts;
    h.count[TCF_HEALTH_ZWIN][d] = c.tcp[d].zero_win;
    for (int l = 0; l < 2; l++)
      for (int tenth = 0; tenth < 2; tenth++)
        h.rank[l][d][tenth] = uint8_t(TCF_HEALTH_RANK(c.health_order, l, d, tenth));
  }
  return h;
}

History zeek_history(std::span<const SeenStep> steps, int orig, bool tcp, bool flipped,
                     const HealthLetters &health) {
  History history;
  if (flipped)
    history.push_back('^');
  auto marks = tcp ? health_marks(health) : std::vector<HealthMark>{};
  auto mark = marks.begin();
  // A health letter seen when `rank` bits were seen goes before the step
  // that brought bit number rank + 1.
  auto marks_before = [&](unsigned rank) {
    for (; mark != marks.end() && mark->rank <= rank; ++mark)
      history.push_back(mark->dir == orig ? char(mark->letter - 'a' + 'A') : mark->letter);
  };
  uint8_t written[2] = {0, 0};
  unsigned rank = 0;
  for (const auto &step : steps) {
    int dir = step.dir & 1;
    marks_before(rank);
    rank += unsigned(std::popcount(step.bits));
    auto put = [&](uint8_t bit, char letter) {
      if (!(step.bits & bit) || (written[dir] & bit))
        return;
      written[dir] |= bit;
      history.push_back(dir == orig ? char(letter - 'a' + 'A') : letter);
    };
    if (!tcp) {
      put(TCF_SEEN_PKT, 'd');
      continue;
    }
    for (const auto &l : tcp_letters)
      put(l.bit, l.letter);
  }
  marks_before(UINT_MAX);
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
  return tcp_state_name(ep[orig], ep[1 - orig], zeek_history(steps, orig, true, false).view());
}

ConnState udp_conn_state(uint32_t seen, int orig) {
  bool o = dir_bits(seen, orig) & TCF_SEEN_PKT;
  bool r = dir_bits(seen, 1 - orig) & TCF_SEEN_PKT;
  if (o)
    return r ? ConnState::SF : ConnState::S0;
  return r ? ConnState::SHR : ConnState::OTH;
}

std::optional<uint64_t> handshake_rtt(std::span<const SeenStep> steps, int orig, uint32_t ack_dt) {
  if (ack_dt == 0 || ack_dt == UINT32_MAX || steps.empty())
    return std::nullopt;
  // The SYN opened the connection, the SYN/ACK answered it, the ACK followed.
  const SeenStep &syn = steps.front();
  if (syn.dir != orig || !(syn.bits & TCF_SEEN_SYN))
    return std::nullopt;
  bool answered = false;
  for (const auto &step : steps) {
    if (step.dir != orig && (step.bits & TCF_SEEN_SYNACK))
      answered = true;
    if (step.dir == orig && (step.bits & TCF_SEEN_ACK))
      return answered ? std::optional<uint64_t>(ack_dt) : std::nullopt;
  }
  return std::nullopt;
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

ZeekView zeek_view(const tcf_flow_key &key, std::span<const SeenStep> steps,
                   const Orientation &orientation, const HealthLetters &health) {
  int orig = orientation.orig;
  bool tcp = is_tcp(key);
  ZeekView view;
  view.history = zeek_history(steps, orig, tcp, orientation.flipped, health);
  if (tcp) {
    view.state = tcp_conn_state(steps, orig);
    view.closed_by = closed_by(steps);
  } else if (key.proto == IPPROTO_UDP || key.proto == IPPROTO_UDPLITE) {
    view.state = udp_conn_state(steps_seen(steps), orig);
  } else {
    view.state = ConnState::OTH; // Zeek's conn_state for ICMP and everything else
  }
  return view;
}

Ports zeek_ports(const tcf_flow_key &key, uint8_t icmp_type, uint8_t icmp_code, int orig) {
  switch (key.kind) {
  case TCF_KIND_PORTS:
    return {key.port[orig], key.port[1 - orig]};
  case TCF_KIND_ICMP_ECHO:
    if (is_echo_reply(key, icmp_type))
      return {key.proto == IPPROTO_ICMPV6 ? icmpv6_echo_request : icmp_echo_request, 0};
    return {icmp_type, icmp_code};
  case TCF_KIND_ICMP:
    return {icmp_type, icmp_code};
  default:
    return {};
  }
}

Uid conn_uid(const tcf_flow_key &key, uint64_t first_ns, uint64_t salt) {
  uint64_t hash = fnv1a(bytes_of(salt), fnv1a(bytes_of(first_ns), fnv1a(bytes_of(key))));
  Uid uid;
  uid.chars[0] = 'C';
  append_base62(&uid.chars[1], first_ns / 1000, 9);  // µs: 62^9 µs is over 400 years
  constexpr uint64_t base62_8 = 218'340'105'584'896; // 62^8
  append_base62(&uid.chars[10], mix(hash) % base62_8, 8);
  return uid;
}

} // namespace tcflows
