// A model of what bpf/tcflows.bpf.c does per packet (count(), split(),
// mark_seen()), so that tracker tests can describe traffic as packets and
// get the flow map, the ended map and the ring-buffer events the program
// would produce. It is input for the tests, never a source of expectations.
#pragma once

#include "kernel/abi.h"
#include "kernel/maps.h"
#include "keys.h"
#include "track/flow.h"

#include <netinet/in.h>

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

namespace fake {

// TCP flags as on the wire.
constexpr uint8_t FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10;

constexpr uint64_t sec = 1'000'000'000;
constexpr uint64_t ms = 1'000'000;

struct Packet {
  tcf_flow_key key{}; // as sent: side 0 is the sender
  uint8_t tcp_flags = 0;
  uint32_t bytes = 0; // IP bytes
  bool data = false;
  uint64_t ts = 0;
  uint8_t icmp_type = 0;
  uint8_t icmp_code = 0;
};

class Kernel {
public:
  // Idle timeouts per tcf_idle_class (0 = never), as the loader configures them.
  uint64_t idle_ns[TCF_IDLE_MAX] = {300 * sec, 60 * sec, 60 * sec, 60 * sec};

  void send(const Packet &p) {
    tcf_flow_key key = p.key;
    uint8_t bits = seen_bits(p);
    uint8_t dir = uint8_t(tcflows::canonicalise(key));
    bool created = false;
    tcf_flow_val *v = find(key);
    if (!v) {
      tcf_flow_val init{};
      fill_first(init, p, dir);
      flows_.push_back({key, init});
      v = &flows_.back().val;
      created = true;
    } else if (starts_connection(*v, key, bits, p.ts)) {
      split(*v, key, p, dir);
    }
    v->pkts[dir] += 1;
    v->bytes[dir] += p.bytes;
    v->last_ns = std::max<uint64_t>(v->last_ns, p.ts);
    uint8_t fresh = bits & ~uint8_t(v->seen >> (8 * dir));
    v->seen |= uint32_t(bits) << (8 * dir);
    if (fresh || created)
      emit(key, created ? TCF_EV_NEW_FLOW : TCF_EV_SEEN, v->gen, dir, fresh, p.ts);
  }

  std::vector<tcflows::FlowEntry> snapshot() const { return flows_; }

  std::optional<tcf_flow_val> remove(const tcf_flow_key &key) {
    for (auto it = flows_.begin(); it != flows_.end(); ++it)
      if (tcflows::operator==(it->key, key)) {
        tcf_flow_val val = it->val;
        flows_.erase(it);
        return val;
      }
    return std::nullopt;
  }

  std::vector<tcf_event> take_events() { return std::exchange(events_, {}); }
  std::vector<std::pair<tcf_ended_key, tcf_flow_val>> take_ended() {
    return std::exchange(ended_, {});
  }

private:
  static uint8_t seen_bits(const Packet &p) {
    uint8_t f = p.tcp_flags, bits = TCF_SEEN_PKT;
    if (p.key.proto != IPPROTO_TCP || p.key.kind != TCF_KIND_PORTS)
      return p.data ? bits | TCF_SEEN_DATA : bits;
    if (p.data && !(f & (SYN | FIN | RST)))
      bits |= TCF_SEEN_DATA;
    if (f & SYN)
      bits |= (f & ACK) ? TCF_SEEN_SYNACK : TCF_SEEN_SYN;
    else if (f & ACK)
      bits |= TCF_SEEN_ACK;
    if (f & FIN)
      bits |= TCF_SEEN_FIN;
    if (f & RST)
      bits |= TCF_SEEN_RST;
    if ((f & (ACK | SYN | FIN | RST)) == ACK && !p.data)
      bits |= TCF_SEEN_PUREACK;
    return bits;
  }

  uint64_t idle(const tcf_flow_key &k) const {
    switch (k.proto) {
    case IPPROTO_TCP:
      return idle_ns[TCF_IDLE_TCP];
    case IPPROTO_UDP:
    case IPPROTO_UDPLITE:
      return idle_ns[TCF_IDLE_UDP];
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6:
      return idle_ns[TCF_IDLE_ICMP];
    }
    return idle_ns[TCF_IDLE_OTHER];
  }

  bool starts_connection(const tcf_flow_val &v, const tcf_flow_key &k, uint8_t bits,
                         uint64_t now) const {
    uint64_t limit = idle(k);
    if (limit && now > v.last_ns && now - v.last_ns > limit)
      return true;
    if (!(bits & TCF_SEEN_SYN) || k.kind != TCF_KIND_PORTS)
      return false;
    if (v.seen & (TCF_SEEN_RST | TCF_SEEN_RST << 8))
      return true;
    return (v.seen & TCF_SEEN_FIN) && (v.seen & TCF_SEEN_FIN << 8);
  }

  static void fill_first(tcf_flow_val &v, const Packet &p, uint8_t dir) {
    v.first_ns = p.ts;
    v.last_ns = p.ts;
    v.first_dir = dir;
    v.icmp_type = p.icmp_type;
    v.icmp_code = p.icmp_code;
  }

  void split(tcf_flow_val &v, const tcf_flow_key &key, const Packet &p, uint8_t dir) {
    tcf_ended_key ek{};
    ek.flow = key;
    ek.gen = v.gen;
    ended_.push_back({ek, v});
    uint32_t gen = v.gen + 1;
    v = tcf_flow_val{};
    v.gen = gen;
    fill_first(v, p, dir);
    emit(key, TCF_EV_ENDED, ek.gen, dir, 0, p.ts);
  }

  void emit(const tcf_flow_key &key, uint8_t type, uint32_t gen, uint8_t dir, uint8_t bits,
            uint64_t ts) {
    tcf_event e{};
    e.key = key;
    e.ts_ns = ts;
    e.gen = gen;
    e.type = type;
    e.dir = dir;
    e.bits = bits;
    events_.push_back(e);
  }

  tcf_flow_val *find(const tcf_flow_key &key) {
    for (auto &e : flows_)
      if (tcflows::operator==(e.key, key))
        return &e.val;
    return nullptr;
  }

  std::vector<tcflows::FlowEntry> flows_;
  std::vector<std::pair<tcf_ended_key, tcf_flow_val>> ended_;
  std::vector<tcf_event> events_;
};

} // namespace fake
