#include "rig.h"

#include "track/flow.h"

#include <algorithm>

#include <arpa/inet.h>

using namespace tcflows;

namespace model {

Conversation::Conversation(const char *c, uint16_t cport, const char *s, uint16_t sport,
                           uint8_t proto)
    : key(fake::v4(c, cport, s, sport, proto)) {}

Packet Conversation::count(Packet p, int side) {
  pkts[side]++;
  bytes[side] += p.bytes;
  if (p.seq == next)
    p.seq = next_seq[side];
  p.payload = p.data ? std::max<uint32_t>(p.bytes, 41) - 40 : 0;
  p.ack = next_seq[1 - side];
  next_seq[side] = p.seq + p.payload + bool(p.tcp_flags & SYN) + bool(p.tcp_flags & FIN);
  return p;
}

Packet Conversation::client(uint8_t flags, uint32_t bytes, bool data, uint32_t seq) {
  return count({key, flags, bytes, data, seq}, 0);
}

Packet Conversation::server(uint8_t flags, uint32_t bytes, bool data, uint32_t seq) {
  return count({fake::reversed(key), flags, bytes, data, seq}, 1);
}

void Conversation::short_tcp(Kernel &k, uint64_t gap) {
  for (Packet p :
       {client(SYN), server(SYN | ACK), client(ACK), client(ACK | PSH, 140, true),
        server(ACK | PSH, 1040, true), client(ACK | FIN), server(ACK | FIN), client(ACK)}) {
    k.send(p);
    k.advance(gap);
  }
}

Rig::Rig(uint32_t slots, TrackerConfig config) : k(slots) {
  tracker = std::make_unique<Tracker>(config, table);
}

TrackerConfig Rig::default_config() {
  TrackerConfig config;
  config.linger = std::chrono::seconds(5);
  config.uid_salt = 42;
  return config;
}

SweepResult Rig::sweep(bool checkpoint) {
  Checkpoint which = checkpoint ? Checkpoint::all() : Checkpoint{};
  auto result = tracker->sweep(k.clock_ns, which, [&](std::span<const ConnUpdate> batch) {
    updates.insert(updates.end(), batch.begin(), batch.end());
  });
  tracker->durable(result.seq);
  return result;
}

SweepResult Rig::after(uint64_t ns, bool checkpoint) {
  k.advance(ns);
  return sweep(checkpoint);
}

std::vector<ConnRecord> Rig::finals() const {
  std::vector<ConnRecord> out;
  for (const auto &u : updates)
    if (u.final())
      out.push_back(u.record);
  return out;
}

void Rig::check_deltas() const {
  struct Sum {
    uint64_t v[4] = {};
    const ConnRecord *final = nullptr;
    int finals = 0;
  };
  std::map<std::string, Sum> sums;
  for (const auto &u : updates) {
    Sum &s = sums[std::string(u.record.uid.view())];
    s.v[0] += u.delta.orig_pkts;
    s.v[1] += u.delta.orig_bytes;
    s.v[2] += u.delta.resp_pkts;
    s.v[3] += u.delta.resp_bytes;
    if (u.final()) {
      s.final = &u.record;
      s.finals++;
    }
  }
  for (const auto &[uid, s] : sums) {
    INFO("uid ", uid);
    CHECK(s.finals <= 1);
    if (!s.final)
      continue;
    CHECK(s.v[0] == s.final->orig_pkts);
    CHECK(s.v[1] == s.final->orig_bytes);
    CHECK(s.v[2] == s.final->resp_pkts);
    CHECK(s.v[3] == s.final->resp_bytes);
  }
}

std::vector<ConnRecord> Rig::finals_of(const Conversation &c) const {
  tcf_flow_key canon = c.key;
  canonicalise(canon);
  std::vector<ConnRecord> out;
  for (const auto &r : finals())
    if (r.key == canon)
      out.push_back(r);
  return out;
}

ConnRecord Rig::final_of(const Conversation &c) const {
  auto all = finals_of(c);
  REQUIRE(all.size() == 1);
  return all[0];
}

void check_record(const ConnRecord &r, const Conversation &c) {
  tcf_flow_key canon = c.key;
  int client_side = canonicalise(canon) == TCF_DIR_FWD ? 0 : 1;
  CHECK(r.key == canon);
  CHECK(int(r.orig) == client_side);
  CHECK(r.orig_pkts == c.pkts[0]);
  CHECK(r.orig_bytes == c.bytes[0]);
  CHECK(r.resp_pkts == c.pkts[1]);
  CHECK(r.resp_bytes == c.bytes[1]);
}

} // namespace model
