// What the tracker makes of connections, on the kernel model: Zeek's view
// (originator, state, history, close reason), ports and addresses, the
// live tables, uids. Races between the program and the tracker are in
// test_protocol.cpp.
#include "rig.h"

#include "track/flow.h"

#include <doctest/doctest.h>

#include <cstring>

using namespace tcflows;
using namespace model;

namespace {

std::string history(const ConnRecord &r) { return std::string(r.history.view()); }

tcf_flow_key icmp_key(const char *a, const char *b, uint16_t id, uint8_t proto = 1) {
  tcf_flow_key key = fake::v4(a, id, b, id, proto, TCF_KIND_ICMP_ECHO);
  return key;
}

} // namespace

TEST_CASE("tracker: the originator on key side 1: addresses, ports and counters follow it") {
  Rig rig;
  // 10.0.0.9 is the higher address: the client is key side 1.
  Conversation c("10.0.0.9", 40000, "10.0.0.2", 80);
  c.short_tcp(rig.k);
  rig.after(6 * sec);
  auto r = rig.after(1 * sec).finals == 1 ? rig.final_of(c) : ConnRecord{};
  check_record(r, c);
  CHECK(r.orig == 1);
  CHECK(addr_text(r.key, r.orig) == "10.0.0.9");
  CHECK(r.src_port == 40000);
  CHECK(r.dst_port == 80);
  CHECK(history(r) == "ShADdFf");
  CHECK_FALSE(r.orig_guessed);
}

TEST_CASE("tracker: refused and unanswered connections: REJ and S0") {
  Rig rig;
  Conversation refused("10.0.0.1", 40000, "10.0.0.2", 81);
  rig.k.send(refused.client(SYN));
  rig.k.send(refused.server(RST | ACK));
  Conversation unanswered("10.0.0.1", 40001, "10.0.0.2", 82);
  rig.k.send(unanswered.client(SYN));
  rig.after(6 * sec);
  rig.after(1 * sec);
  auto rej = rig.final_of(refused);
  check_record(rej, refused);
  CHECK(rej.state == ConnState::REJ);
  CHECK(rej.close_reason == CloseReason::rst);
  CHECK(history(rej) == "Sr");
  rig.after(300 * sec); // TCP idle timeout
  rig.after(1 * sec);
  auto s0 = rig.final_of(unanswered);
  check_record(s0, unanswered);
  CHECK(s0.state == ConnState::S0);
  CHECK(s0.close_reason == CloseReason::idle);
}

TEST_CASE("tracker: RST abort: RSTO, closed by rst") {
  Rig rig;
  Conversation c("10.0.0.1", 40000, "10.0.0.2", 80);
  for (Packet p : {c.client(SYN), c.server(SYN | ACK), c.client(ACK),
                   c.client(ACK | PSH, 100, true), c.client(RST)})
    rig.k.send(p);
  rig.after(6 * sec);
  rig.after(1 * sec);
  auto r = rig.final_of(c);
  check_record(r, c);
  CHECK(r.state == ConnState::RSTO);
  CHECK(r.close_reason == CloseReason::rst);
  CHECK(history(r) == "ShADR");
}

TEST_CASE("tracker: late ACKs and a retransmitted FIN within the linger count to the closed one") {
  Rig rig;
  Conversation c("10.0.0.1", 40000, "10.0.0.2", 80);
  c.short_tcp(rig.k);
  rig.after(2 * sec);
  rig.k.send(c.server(ACK | FIN)); // retransmitted
  rig.k.send(c.client(ACK));
  rig.after(4 * sec); // still within 5 s of the last packet
  CHECK(rig.finals().empty());
  rig.after(2 * sec);
  rig.after(1 * sec);
  check_record(rig.final_of(c), c);
}

TEST_CASE("tracker: idle timeouts per protocol, configurable") {
  auto config = Rig::default_config();
  config.idle[TCF_IDLE_UDP] = std::chrono::seconds(10);
  Rig rig(64, config);
  rig.k.cfg.idle_ns[TCF_IDLE_UDP] = 10 * sec;
  Conversation udp("10.0.0.1", 5000, "10.0.0.2", 53, 17);
  rig.k.send(udp.client(0, 60, true));
  Conversation tcp("10.0.0.1", 40000, "10.0.0.2", 80);
  rig.k.send(tcp.client(SYN));
  rig.after(11 * sec);
  rig.after(1 * sec);
  check_record(rig.final_of(udp), udp);
  CHECK(rig.finals_of(tcp).empty()); // TCP's 5 minutes are not over
  // A packet after the program's own idle timeout starts the next connection.
  Conversation again("10.0.0.1", 5000, "10.0.0.2", 53, 17);
  rig.k.send(again.client(0, 70, true));
  rig.k.advance(11 * sec);
  rig.k.send(again.server(0, 80, true)); // idle: a third one
  rig.after(11 * sec);
  rig.after(1 * sec);
  CHECK(rig.finals_of(udp).size() == 3);
}

TEST_CASE("tracker: mid-stream TCP: originator from the ports, marked guessed and flipped") {
  Rig rig;
  Conversation c("10.0.0.1", 40000, "10.0.0.2", 443);
  rig.k.send(c.server(ACK | PSH, 1000, true)); // the server's packet first
  rig.k.send(c.client(ACK));
  rig.after(301 * sec);
  rig.after(1 * sec);
  auto r = rig.final_of(c);
  check_record(r, c);
  CHECK(r.orig_guessed);
  CHECK(history(r) == "^dA");
  CHECK(r.state == ConnState::OTH);
}

TEST_CASE("tracker: UDP between ephemeral ports: the first sender, guessed, not flipped") {
  Rig rig;
  Conversation c("10.0.0.2", 40000, "10.0.0.1", 50000, 17);
  rig.k.send(c.client(0, 100, true));
  rig.k.send(c.server(0, 100, true));
  rig.after(61 * sec);
  rig.after(1 * sec);
  auto r = rig.final_of(c);
  check_record(r, c);
  CHECK(r.orig_guessed);
  CHECK(history(r) == "Dd");
  CHECK(r.state == ConnState::SF);
}

TEST_CASE("tracker: ICMP echo: one connection per identifier, type and code as ports") {
  Rig rig;
  for (bool reply_first : {false, true}) {
    CAPTURE(reply_first);
    uint16_t id = reply_first ? 8 : 7;
    Packet request{icmp_key("10.0.0.1", "10.0.0.2", id), 0, 84, true, 0, 8, 0};
    Packet reply{icmp_key("10.0.0.2", "10.0.0.1", id), 0, 84, true, 0, 0, 0};
    if (reply_first)
      rig.k.send(reply);
    rig.k.send(request);
    if (!reply_first)
      rig.k.send(reply);
  }
  rig.after(61 * sec);
  rig.after(1 * sec);
  auto finals = rig.finals();
  REQUIRE(finals.size() == 2);
  for (const auto &r : finals) {
    CHECK(addr_text(r.key, r.orig) == "10.0.0.1"); // the requester
    CHECK(r.src_port == 8);                        // echo request
    CHECK(r.dst_port == 0);
    CHECK(r.orig_pkts == 1);
    CHECK(r.resp_pkts == 1);
    CHECK(r.state == ConnState::OTH);
  }
}

TEST_CASE("tracker: the originator's hook: ingress or egress, from the first packet") {
  Rig rig;
  Conversation c("10.0.0.1", 40000, "10.0.0.2", 80);
  Packet syn = c.client(SYN);
  syn.egress = true; // this host is the client
  rig.k.send(syn);
  Packet synack = c.server(SYN | ACK);
  rig.k.send(synack);
  rig.tracker->shutdown(rig.k.clock_ns, [&](auto batch) {
    rig.updates.insert(rig.updates.end(), batch.begin(), batch.end());
  });
  CHECK_FALSE(rig.final_of(c).orig_ingress);
}

TEST_CASE("tracker: live tables: the largest open connections, flow totals with finished ones") {
  auto config = Rig::default_config();
  config.live_rows = 2;
  Rig rig(64, config);
  std::vector<Conversation> convs;
  for (int i = 0; i < 4; i++) {
    convs.emplace_back("10.0.0.1", uint16_t(5000 + i), "10.0.0.2", 53, 17);
    rig.k.send(convs[i].client(0, 100 * (i + 1), true));
  }
  rig.sweep();
  auto top = rig.tracker->top_open(2);
  REQUIRE(top.size() == 2);
  CHECK(top[0].orig_bytes == 400);
  CHECK(top[1].orig_bytes == 300);
  CHECK(rig.tracker->open_count() == 4);
  // The biggest ends; its key's totals stay in the flow totals.
  rig.k.advance(61 * sec);
  rig.k.send(convs[0].client(0, 50, true)); // keeps port 5000 open
  rig.after(1 * sec);
  rig.after(1 * sec);
  auto totals = rig.tracker->flow_totals(10);
  uint64_t sum = 0;
  for (const auto &t : totals)
    sum += t.bytes[0] + t.bytes[1];
  CHECK(sum == 100 + 200 + 300 + 400 + 50);
}

TEST_CASE("tracker: a second tracker over the same slots gives the same uids") {
  Rig rig;
  Conversation c("10.0.0.1", 40000, "10.0.0.2", 80);
  rig.k.send(c.client(SYN));
  rig.sweep();
  Uid first = rig.updates.back().record.uid;
  Tracker other(Rig::default_config(), rig.table);
  std::vector<ConnUpdate> seen;
  other.sweep(rig.k.clock_ns, Checkpoint::all(),
              [&](auto batch) { seen.assign(batch.begin(), batch.end()); });
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].record.uid == first);
}

TEST_CASE("tracker: link-layer flows: MAC addresses, no ports, the first sender guessed") {
  Rig rig;
  tcf_flow_key arp{};
  arp.kind = TCF_KIND_LINK;
  arp.ethertype = 0x0806;
  arp.ifindex = 3;
  uint8_t a[6] = {2, 0, 0, 0, 0, 0xa}, b[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  std::memcpy(arp.addr[0], a, 6);
  std::memcpy(arp.addr[1], b, 6);
  rig.k.send({arp, 0, 42, true});
  rig.after(61 * sec);
  rig.after(1 * sec);
  auto finals = rig.finals();
  REQUIRE(finals.size() == 1);
  CHECK(proto_name(finals[0].key) == "ARP");
  CHECK(addr_text(finals[0].key, finals[0].orig) == "02:00:00:00:00:0a");
  CHECK(finals[0].orig_guessed);
  CHECK(finals[0].src_port == 0);
  CHECK(finals[0].orig_bytes == 42);
}
