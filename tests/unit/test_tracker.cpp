// The connection tracker fed with what the TC program would produce for
// scripted traffic (fake_kernel.h models the program). Every expected value
// below comes from the scenario: the packets each side sent, their sizes and
// times.
#include "fake_kernel.h"
#include "text_record.h"
#include "track/tracker.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <linux/if_ether.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

using namespace tcflows;
using namespace fake;
using tcflows::test::text_of;

namespace {

constexpr int64_t epoch_offset = int64_t(1'700'000'000) * int64_t(sec);
constexpr uint64_t t0 = 10 * sec; // packet clock at the start of each scenario

TrackerConfig lab_config() {
  TrackerConfig c;
  c.boot_to_epoch_ns = epoch_offset;
  return c;
}

// The agent's side of the maps, in the orders a test chooses.
struct Lab {
  Kernel kernel;
  Tracker tracker{lab_config()};

  explicit Lab(TrackerConfig config = lab_config()) : tracker(std::move(config)) {}

  void deliver(const std::function<bool(const tcf_event &)> &keep = {}) {
    for (const auto &e : kernel.take_events())
      if (!keep || keep(e))
        tracker.on_event(e);
  }
  void drop_events() { kernel.take_events(); }
  void drain_ended() {
    for (const auto &[key, val] : kernel.take_ended())
      tracker.on_ended(key, val);
  }
  std::vector<tcf_flow_key> read_flows(uint64_t now) {
    return tracker.on_flows(kernel.snapshot(), now);
  }
  void remove(const std::vector<tcf_flow_key> &keys, uint64_t now) {
    for (const auto &key : keys) {
      auto val = kernel.remove(key);
      REQUIRE(val.has_value());
      tracker.on_removed(key, *val, now);
    }
  }
  // The agent's periodic sweep: events, ended map, flow map, deletes.
  void sweep(uint64_t now) {
    deliver();
    drain_ended();
    remove(read_flows(now), now);
  }
  std::vector<ConnUpdate> updates(uint64_t now) { return tracker.take_updates(now); }
  // A sweep and the updates at the end of an interval.
  std::vector<ConnUpdate> interval(uint64_t now) {
    sweep(now);
    return updates(now);
  }
};

// One TCP conversation on a 5-tuple; the client sends on c2s.
struct Tcp {
  Kernel &kernel;
  tcf_flow_key c2s;
  void c(uint64_t ts, uint8_t flags, uint32_t bytes, bool data = false) {
    kernel.send({c2s, flags, bytes, data, ts});
  }
  void s(uint64_t ts, uint8_t flags, uint32_t bytes, bool data = false) {
    kernel.send({reversed(c2s), flags, bytes, data, ts});
  }
  // SYN 60, SYN/ACK 60, ACK 52 at t, t + 1 ms, t + 2 ms: RTT 2 ms.
  void handshake(uint64_t t) {
    c(t, SYN, 60);
    s(t + 1 * ms, SYN | ACK, 60);
    c(t + 2 * ms, ACK, 52);
  }
  // Handshake, one request of `req` payload bytes, one response of `resp`,
  // client closes first, final ACK. Client: 5 packets, 268 + req bytes;
  // server: 4 packets, 216 + resp bytes. History ShADadFf, RTT 2 ms.
  void exchange(uint64_t t, uint32_t req, uint32_t resp) {
    handshake(t);
    c(t + 3 * ms, PSH | ACK, 52 + req, true);
    s(t + 4 * ms, ACK, 52);
    s(t + 5 * ms, PSH | ACK, 52 + resp, true);
    c(t + 6 * ms, FIN | ACK, 52);
    s(t + 7 * ms, FIN | ACK, 52);
    c(t + 8 * ms, ACK, 52);
  }
};

const tcf_flow_key web = v4("10.0.0.1", 40000, "10.0.0.2", 80, IPPROTO_TCP);

// The update of the connection whose first packet was at `boot_ns`.
const ConnUpdate &started(const std::vector<ConnUpdate> &updates, uint64_t boot_ns) {
  const ConnUpdate *found = nullptr;
  for (const auto &u : updates)
    if (u.record.start_ns == uint64_t(epoch_offset) + boot_ns)
      found = &u;
  REQUIRE(found);
  return *found;
}

void check_counts(const ConnRecord &r, uint64_t op, uint64_t ob, uint64_t rp, uint64_t rb) {
  CHECK(r.orig_pkts == op);
  CHECK(r.orig_bytes == ob);
  CHECK(r.resp_pkts == rp);
  CHECK(r.resp_bytes == rb);
}

void check_delta(const TrafficDelta &d, uint64_t op, uint64_t ob, uint64_t rp, uint64_t rb) {
  CHECK(d.orig_pkts == op);
  CHECK(d.orig_bytes == ob);
  CHECK(d.resp_pkts == rp);
  CHECK(d.resp_bytes == rb);
}

} // namespace

TEST_CASE("a complete TCP connection: checkpoint, then final after the linger") {
  Lab lab;
  Tcp tcp{lab.kernel, web};
  tcp.c2s.vlan[0] = 100;
  tcp.exchange(t0, 100, 1000);

  lab.sweep(t0 + 1 * sec); // closed 1 s ago: still lingering
  auto first = lab.updates(t0 + 1 * sec);
  REQUIRE(first.size() == 1);
  const ConnRecord &r = first[0].record;
  CHECK_FALSE(first[0].final());
  CHECK(r.uid.view().size() == 18);
  CHECK(text_of(r).iface == "if3");
  CHECK(text_of(r).proto == "TCP");
  CHECK(text_of(r).src_addr == "10.0.0.1");
  CHECK(r.src_port == 40000);
  CHECK(text_of(r).dst_addr == "10.0.0.2");
  CHECK(r.dst_port == 80);
  CHECK(r.vlan() == 100);
  CHECK(r.start_ns == uint64_t(epoch_offset) + t0);
  CHECK(r.end_ns == uint64_t(epoch_offset) + t0 + 8 * ms);
  check_counts(r, 5, 368, 4, 1216);
  CHECK(state_name(r.state) == "SF");
  CHECK(r.history.view() == "ShADadFf");
  CHECK(r.rtt_ns == 2 * ms);
  CHECK_FALSE(r.orig_guessed);
  CHECK(first[0].delta.from_ns == r.start_ns);
  CHECK(first[0].delta.to_ns == uint64_t(epoch_offset) + t0 + 1 * sec);
  check_delta(first[0].delta, 5, 368, 4, 1216);

  lab.sweep(t0 + 8 * ms + 4 * sec); // quiet for 4 s < linger
  CHECK(lab.updates(t0 + 5 * sec).empty());
  lab.sweep(t0 + 8 * ms + 6 * sec);
  auto last = lab.updates(t0 + 7 * sec);
  REQUIRE(last.size() == 1);
  CHECK(last[0].final());
  CHECK(last[0].record.uid == r.uid);
  CHECK(last[0].record.close_reason == CloseReason::fin);
  check_counts(last[0].record, 5, 368, 4, 1216);
  check_delta(last[0].delta, 0, 0, 0, 0);
  CHECK(last[0].delta.from_ns == first[0].delta.to_ns);

  CHECK(lab.updates(t0 + 8 * sec).empty());
  CHECK(lab.tracker.open_connections().empty());
  CHECK(lab.tracker.connections_finished() == 1);
}

TEST_CASE("the originator on key side 1: addresses, ports and counters follow it") {
  Lab lab;
  // The client's address is the higher one, so the canonical key starts with the server.
  Tcp tcp{lab.kernel, v4("10.0.0.9", 50000, "10.0.0.1", 443, IPPROTO_TCP)};
  tcp.exchange(t0, 300, 3000);
  auto u = lab.interval(t0 + 1 * sec);
  REQUIRE(u.size() == 1);
  CHECK(text_of(u[0].record).src_addr == "10.0.0.9");
  CHECK(u[0].record.src_port == 50000);
  CHECK(text_of(u[0].record).dst_addr == "10.0.0.1");
  CHECK(u[0].record.dst_port == 443);
  check_counts(u[0].record, 5, 568, 4, 3216);
  CHECK(u[0].record.history.view() == "ShADadFf");
}

TEST_CASE("history order from events; lost events fall back to the canonical order") {
  // The server closes first: f before F.
  auto run = [](const std::function<bool(const tcf_event &)> &keep) {
    Lab lab;
    Tcp tcp{lab.kernel, web};
    tcp.c(t0, SYN, 60);
    tcp.s(t0 + 1 * ms, SYN | ACK, 60);
    tcp.c(t0 + 3 * ms, ACK, 52);
    tcp.c(t0 + 4 * ms, PSH | ACK, 152, true);
    tcp.s(t0 + 5 * ms, PSH | ACK, 552, true);
    tcp.s(t0 + 6 * ms, FIN | ACK, 52);
    tcp.c(t0 + 7 * ms, FIN | ACK, 52);
    tcp.s(t0 + 8 * ms, ACK, 52);
    lab.deliver(keep);
    lab.drain_ended();
    lab.read_flows(t0 + 1 * sec);
    auto u = lab.updates(t0 + 1 * sec);
    REQUIRE(u.size() == 1);
    return u[0].record;
  };
  auto all = run({});
  CHECK(all.history.view() == "ShADdfFa"); // the server's pure ACK came last
  CHECK(state_name(all.state) == "SF");
  CHECK(all.rtt_ns == 3 * ms);

  auto no_fin = run([](const tcf_event &e) { return !(e.bits & TCF_SEEN_FIN); });
  CHECK(no_fin.history.view() == "ShADdaFf"); // the FINs without their time: last, originator first
  CHECK(no_fin.rtt_ns == 3 * ms);

  auto no_synack = run([](const tcf_event &e) { return !(e.bits & TCF_SEEN_SYNACK); });
  CHECK(no_synack.history.view() == "ShADdfFa");
  CHECK_FALSE(no_synack.rtt_ns.has_value());

  auto none = run([](const tcf_event &) { return false; });
  CHECK(none.history.view() == "ShADadFf"); // canonical: the responder's pure ACK before its data
  CHECK(state_name(none.state) == "SF");
  CHECK_FALSE(none.rtt_ns.has_value());
  CHECK(none.uid == all.uid);
  check_counts(none, 4, 316, 4, 716);
}

TEST_CASE("refused and unanswered connections: REJ and S0") {
  Lab lab;
  Tcp refused{lab.kernel, v4("10.0.0.1", 40001, "10.0.0.2", 81, IPPROTO_TCP)};
  refused.c(t0, SYN, 60);
  refused.s(t0 + 1 * ms, RST | ACK, 40);
  Tcp silent{lab.kernel, v4("10.0.0.1", 40002, "10.0.0.2", 82, IPPROTO_TCP)};
  silent.c(t0 + 100 * ms, SYN, 60);
  silent.c(t0 + 1 * sec, SYN, 60); // retransmitted
  silent.c(t0 + 3 * sec, SYN, 60);

  lab.sweep(t0 + 10 * sec); // the RST was 10 s ago: past the linger
  auto u = lab.updates(t0 + 10 * sec);
  REQUIRE(u.size() == 2);
  const ConnUpdate &rej = started(u, t0);
  CHECK(rej.record.dst_port == 81);
  CHECK(rej.final());
  CHECK(state_name(rej.record.state) == "REJ");
  CHECK(rej.record.history.view() == "Sr");
  CHECK(rej.record.close_reason == CloseReason::rst);
  check_counts(rej.record, 1, 60, 1, 40);

  const ConnUpdate &s0 = started(u, t0 + 100 * ms);
  CHECK_FALSE(s0.final());
  CHECK(state_name(s0.record.state) == "S0");
  CHECK(s0.record.history.view() == "S");
  check_counts(s0.record, 3, 180, 0, 0);

  lab.sweep(t0 + 3 * sec + 299 * sec); // TCP idle timeout is 5 min
  CHECK(lab.updates(t0 + 302 * sec).empty());
  lab.sweep(t0 + 3 * sec + 301 * sec);
  auto idle = lab.updates(t0 + 304 * sec);
  REQUIRE(idle.size() == 1);
  CHECK(state_name(idle[0].record.state) == "S0");
  CHECK(idle[0].record.close_reason == CloseReason::idle);
  check_delta(idle[0].delta, 0, 0, 0, 0);
}

TEST_CASE("RST abort: RSTO, closed by rst") {
  Lab lab;
  Tcp tcp{lab.kernel, web};
  tcp.handshake(t0);
  tcp.c(t0 + 3 * ms, RST | ACK, 40);
  auto u = lab.interval(t0 + 6 * sec);
  REQUIRE(u.size() == 1);
  CHECK(state_name(u[0].record.state) == "RSTO");
  CHECK(u[0].record.history.view() == "ShAR");
  CHECK(u[0].record.close_reason == CloseReason::rst);
  check_counts(u[0].record, 3, 152, 1, 60);
}

namespace {

// Three connections on one 5-tuple: two complete, the third open.
void three_connections(Tcp &tcp) {
  tcp.exchange(t0, 100, 1000);           // client 5/368, server 4/1216
  tcp.exchange(t0 + 1 * sec, 200, 2000); // client 5/468, server 4/2216
  tcp.handshake(t0 + 2 * sec);
  tcp.c(t0 + 2 * sec + 3 * ms, PSH | ACK, 352, true); // client 3/464, server 1/60
}

void check_three(const std::vector<ConnUpdate> &u) {
  REQUIRE(u.size() == 3);
  const ConnUpdate &a = started(u, t0), &b = started(u, t0 + 1 * sec),
                   &c = started(u, t0 + 2 * sec);
  CHECK(a.final());
  CHECK(a.record.close_reason == CloseReason::fin);
  CHECK(state_name(a.record.state) == "SF");
  check_counts(a.record, 5, 368, 4, 1216);
  CHECK(b.final());
  CHECK(b.record.close_reason == CloseReason::fin);
  CHECK(state_name(b.record.state) == "SF");
  check_counts(b.record, 5, 468, 4, 2216);
  CHECK_FALSE(c.final());
  CHECK(state_name(c.record.state) == "S1");
  check_counts(c.record, 3, 464, 1, 60);
  CHECK(a.record.uid != b.record.uid);
  CHECK(b.record.uid != c.record.uid);
  CHECK(a.record.uid != c.record.uid);
}

} // namespace

TEST_CASE("reuse of a 5-tuple: three connections, every arrival order") {
  SUBCASE("ended entries before the flow map, events delivered") {
    Lab lab;
    Tcp tcp{lab.kernel, web};
    three_connections(tcp);
    lab.deliver();
    lab.drain_ended();
    lab.read_flows(t0 + 3 * sec);
    check_three(lab.updates(t0 + 3 * sec));
  }
  SUBCASE("flow map before the ended entries, no events at all") {
    Lab lab;
    Tcp tcp{lab.kernel, web};
    tcp.exchange(t0, 100, 1000);
    lab.drop_events();
    lab.read_flows(t0 + 100 * ms); // the tracker follows generation 0
    tcp.exchange(t0 + 1 * sec, 200, 2000);
    tcp.handshake(t0 + 2 * sec);
    tcp.c(t0 + 2 * sec + 3 * ms, PSH | ACK, 352, true);
    lab.drop_events();
    lab.read_flows(t0 + 3 * sec); // generation 2 now: 0 and 1 ended
    auto ended = lab.kernel.take_ended();
    REQUIRE(ended.size() == 2);
    for (auto it = ended.rbegin(); it != ended.rend(); ++it) // generation 1 first
      lab.tracker.on_ended(it->first, it->second);
    auto u = lab.updates(t0 + 3 * sec);
    check_three(u);
    // All events lost: history from the bits alone.
    CHECK(started(u, t0).record.history.view() == "ShADadFf");
    CHECK_FALSE(started(u, t0).record.rtt_ns.has_value());
  }
  SUBCASE("events of the newer connections before any sweep, then flow map, then ended") {
    Lab lab;
    Tcp tcp{lab.kernel, web};
    tcp.exchange(t0, 100, 1000);
    lab.sweep(t0 + 100 * ms);
    tcp.exchange(t0 + 1 * sec, 200, 2000);
    lab.deliver(); // ENDED(0) and the SEEN events of generation 1
    tcp.handshake(t0 + 2 * sec);
    tcp.c(t0 + 2 * sec + 3 * ms, PSH | ACK, 352, true);
    lab.deliver();
    lab.read_flows(t0 + 3 * sec);
    lab.drain_ended();
    auto u = lab.updates(t0 + 3 * sec);
    check_three(u);
    const ConnUpdate &b = started(u, t0 + 1 * sec);
    CHECK(b.record.history.view() == "ShADadFf");
    CHECK(b.record.rtt_ns == 2 * ms);
  }
}

TEST_CASE("a split after a checkpoint: the final delta carries the rest") {
  bool events = true;
  SUBCASE("with events") { events = true; }
  SUBCASE("all events lost") { events = false; }
  Lab lab;
  Tcp tcp{lab.kernel, web};
  tcp.handshake(t0);
  auto first = lab.interval(t0 + 1 * sec);
  REQUIRE(first.size() == 1);
  check_delta(first[0].delta, 2, 112, 1, 60);

  tcp.c(t0 + 2 * sec, PSH | ACK, 152, true);
  tcp.c(t0 + 2 * sec + 1 * ms, FIN | ACK, 52);
  tcp.s(t0 + 2 * sec + 2 * ms, FIN | ACK, 52);
  tcp.c(t0 + 3 * sec, SYN, 60); // next connection: the program splits
  if (events)
    lab.deliver();
  else
    lab.drop_events();
  lab.read_flows(t0 + 4 * sec);
  lab.drain_ended();
  auto second = lab.updates(t0 + 4 * sec);
  REQUIRE(second.size() == 2);
  const ConnUpdate &old = started(second, t0);
  CHECK(old.record.uid == first[0].record.uid);
  CHECK(old.final());
  CHECK(old.record.close_reason == CloseReason::fin);
  check_counts(old.record, 4, 316, 2, 112);
  check_delta(old.delta, 2, 204, 1, 52);
  const ConnUpdate &next = started(second, t0 + 3 * sec);
  CHECK(state_name(next.record.state) == "S0");
  check_delta(next.delta, 1, 60, 0, 0);
}

TEST_CASE("linger: late ACKs and retransmitted FINs count to the closed connection") {
  Lab lab;
  Tcp tcp{lab.kernel, web};
  tcp.exchange(t0, 100, 1000); // closed at t0 + 7 ms, last ACK at t0 + 8 ms
  lab.sweep(t0 + 2 * sec);
  tcp.s(t0 + 3 * sec, FIN | ACK, 52); // retransmitted FIN
  tcp.c(t0 + 3 * sec + 1 * ms, ACK, 52);
  lab.sweep(t0 + 7 * sec);          // 4 s after the last packet
  lab.sweep(t0 + 8 * sec + 2 * ms); // 5 s + 1 ms after it: over
  auto u = lab.updates(t0 + 9 * sec);
  REQUIRE(u.size() == 1);
  CHECK(u[0].final());
  check_counts(u[0].record, 6, 420, 5, 1268);
  CHECK(u[0].record.end_ns == uint64_t(epoch_offset) + t0 + 3 * sec + 1 * ms);
}

TEST_CASE("the value the delete returns has the last packets") {
  Lab lab;
  Tcp tcp{lab.kernel, web};
  tcp.exchange(t0, 100, 1000);
  lab.deliver();
  auto over = lab.read_flows(t0 + 6 * sec);
  REQUIRE(over.size() == 1);
  tcp.c(t0 + 6 * sec + 1 * ms, ACK, 52); // between the read and the delete
  lab.remove(over, t0 + 6 * sec);
  auto u = lab.updates(t0 + 6 * sec);
  REQUIRE(u.size() == 1);
  check_counts(u[0].record, 6, 420, 4, 1216);
}

TEST_CASE("a split between the read and the delete loses nothing") {
  Lab lab;
  auto query = v4("10.0.0.1", 40000, "10.0.0.2", 53, IPPROTO_UDP);
  lab.kernel.send({query, 0, 60, true, t0});
  lab.kernel.send({reversed(query), 0, 120, true, t0 + 1 * ms});
  lab.deliver();
  auto over = lab.read_flows(t0 + 61 * sec);
  REQUIRE(over.size() == 1);
  // A new query after the idle timeout: the program splits before the delete.
  lab.kernel.send({query, 0, 70, true, t0 + 61 * sec + 1 * ms});
  lab.remove(over, t0 + 61 * sec);
  lab.deliver();
  lab.drain_ended();
  auto u = lab.updates(t0 + 62 * sec);
  REQUIRE(u.size() == 2);
  const ConnUpdate &a = started(u, t0), &b = started(u, t0 + 61 * sec + 1 * ms);
  CHECK(a.final());
  CHECK(a.record.close_reason == CloseReason::idle);
  CHECK(state_name(a.record.state) == "SF");
  check_counts(a.record, 1, 60, 1, 120);
  CHECK(b.final());
  check_counts(b.record, 1, 70, 0, 0);
  CHECK(state_name(b.record.state) == "S0");
  CHECK(lab.tracker.stats().finals_from_snapshot == 0);
}

TEST_CASE("idle timeouts per protocol, configurable") {
  TrackerConfig config = lab_config();
  config.udp_idle = std::chrono::seconds(10);
  Lab lab(config);
  auto dns = v4("10.0.0.1", 40000, "10.0.0.2", 53, IPPROTO_UDP);
  lab.kernel.send({dns, 0, 60, true, t0});
  lab.kernel.send({reversed(dns), 0, 120, true, t0 + 1 * ms});
  auto ping = v4("10.0.0.1", 7, "10.0.0.2", 7, IPPROTO_ICMP, TCF_KIND_ICMP_ECHO);
  lab.kernel.send({ping, 0, 84, true, t0, 8, 0});

  lab.sweep(t0 + 9 * sec);
  CHECK(lab.updates(t0 + 9 * sec).size() == 2);
  lab.sweep(t0 + 11 * sec); // UDP: 10 s here; ICMP: 60 s
  auto u = lab.updates(t0 + 11 * sec);
  REQUIRE(u.size() == 1);
  CHECK(text_of(u[0].record).proto == "UDP");
  CHECK(u[0].record.close_reason == CloseReason::idle);
  CHECK(u[0].record.history.view() == "Dd");
  lab.sweep(t0 + 59 * sec);
  CHECK(lab.updates(t0 + 59 * sec).empty());
  lab.sweep(t0 + 61 * sec);
  u = lab.updates(t0 + 61 * sec);
  REQUIRE(u.size() == 1);
  CHECK(text_of(u[0].record).proto == "ICMP");
  CHECK(u[0].record.close_reason == CloseReason::idle);
}

TEST_CASE("the program's own idle split: two UDP connections, the first idle") {
  Lab lab;
  auto flow = v4("10.0.0.1", 40000, "10.0.0.2", 5000, IPPROTO_UDP);
  lab.kernel.send({flow, 0, 100, true, t0});
  lab.kernel.send({flow, 0, 100, true, t0 + 30 * sec});
  lab.kernel.send({flow, 0, 200, true, t0 + 100 * sec}); // 70 s quiet: split
  auto u = lab.interval(t0 + 101 * sec);
  REQUIRE(u.size() == 2);
  const ConnUpdate &a = started(u, t0), &b = started(u, t0 + 100 * sec);
  CHECK(a.record.close_reason == CloseReason::idle);
  CHECK(state_name(a.record.state) == "S0");
  check_counts(a.record, 2, 200, 0, 0);
  CHECK_FALSE(b.final());
  check_counts(b.record, 1, 200, 0, 0);
}

TEST_CASE("mid-stream TCP: originator from the ports, marked guessed and flipped") {
  Lab lab;
  auto server = v4("10.0.0.2", 443, "10.0.0.1", 51000, IPPROTO_TCP);
  lab.kernel.send({server, PSH | ACK, 1452, true, t0});
  lab.kernel.send({reversed(server), ACK, 52, false, t0 + 1 * ms});
  lab.kernel.send({server, PSH | ACK, 1452, true, t0 + 2 * ms});
  auto u = lab.interval(t0 + 1 * sec);
  REQUIRE(u.size() == 1);
  const ConnRecord &r = u[0].record;
  CHECK(text_of(r).src_addr == "10.0.0.1");
  CHECK(r.src_port == 51000);
  CHECK(r.dst_port == 443);
  CHECK(r.orig_guessed);
  CHECK(r.history.view() == "^dA");
  CHECK(state_name(r.state) == "OTH");
  check_counts(r, 1, 52, 2, 2904);
  CHECK_FALSE(r.rtt_ns.has_value());
}

TEST_CASE("UDP between ephemeral ports: the first sender, guessed, not flipped") {
  Lab lab;
  auto flow = v4("10.0.0.2", 45000, "10.0.0.1", 46000, IPPROTO_UDP);
  lab.kernel.send({flow, 0, 100, true, t0});
  auto u = lab.interval(t0 + 1 * sec);
  REQUIRE(u.size() == 1);
  CHECK(text_of(u[0].record).src_addr == "10.0.0.2");
  CHECK(u[0].record.src_port == 45000);
  CHECK(u[0].record.orig_guessed);
  CHECK(u[0].record.history.view() == "D");
  CHECK(state_name(u[0].record.state) == "S0");
}

TEST_CASE("ICMP echo: one connection per identifier, type and code as ports") {
  Lab lab;
  auto id7 = v4("10.0.0.1", 7, "10.0.0.2", 7, IPPROTO_ICMP, TCF_KIND_ICMP_ECHO);
  auto id8 = v4("10.0.0.1", 8, "10.0.0.2", 8, IPPROTO_ICMP, TCF_KIND_ICMP_ECHO);
  for (int i = 0; i < 3; i++) {
    uint64_t t = t0 + i * sec;
    lab.kernel.send({id7, 0, 84, true, t, 8, 0});
    lab.kernel.send({reversed(id7), 0, 84, true, t + 1 * ms, 0, 0});
  }
  lab.kernel.send({id8, 0, 84, true, t0 + 500 * ms, 8, 0}); // unanswered
  auto u = lab.interval(t0 + 5 * sec);
  REQUIRE(u.size() == 2);
  const ConnUpdate &a = started(u, t0), &b = started(u, t0 + 500 * ms);
  CHECK(text_of(a.record).proto == "ICMP");
  CHECK(text_of(a.record).src_addr == "10.0.0.1");
  CHECK(a.record.src_port == 8); // echo request
  CHECK(a.record.dst_port == 0); // code
  CHECK(state_name(a.record.state) == "OTH");
  CHECK(a.record.history.view() == "Dd");
  CHECK_FALSE(a.record.orig_guessed);
  check_counts(a.record, 3, 252, 3, 252);
  check_counts(b.record, 1, 84, 0, 0);
  CHECK(b.record.history.view() == "D");
}

TEST_CASE("ICMPv6 echo seen from the reply: the requester is the originator") {
  Lab lab;
  tcf_flow_key reply{};
  inet_pton(AF_INET6, "2001:db8::2", reply.addr[0]);
  inet_pton(AF_INET6, "2001:db8::1", reply.addr[1]);
  reply.port[0] = reply.port[1] = 99;
  reply.ethertype = ETH_P_IPV6;
  reply.proto = IPPROTO_ICMPV6;
  reply.kind = TCF_KIND_ICMP_ECHO;
  lab.kernel.send({reply, 0, 104, true, t0, 129, 0});
  lab.kernel.send({reversed(reply), 0, 104, true, t0 + 1 * sec, 128, 0});
  lab.kernel.send({reply, 0, 104, true, t0 + 1 * sec + 1 * ms, 129, 0});
  auto u = lab.interval(t0 + 2 * sec);
  REQUIRE(u.size() == 1);
  const ConnRecord &r = u[0].record;
  CHECK(text_of(r).proto == "ICMPv6");
  CHECK(text_of(r).src_addr == "2001:db8::1");
  CHECK(text_of(r).dst_addr == "2001:db8::2");
  CHECK(r.src_port == 128);
  CHECK(r.dst_port == 0);
  CHECK(r.history.view() == "^dD");
  check_counts(r, 1, 104, 2, 208);
}

TEST_CASE("deltas of a long connection sum to its final counters") {
  Lab lab;
  Tcp tcp{lab.kernel, web};
  tcp.handshake(t0);
  std::vector<ConnUpdate> all;
  auto interval_ends = [&](uint64_t now) {
    auto u = lab.interval(now);
    all.insert(all.end(), u.begin(), u.end());
    return u.size();
  };
  for (int i = 1; i <= 5; i++) {
    uint64_t now = t0 + i * 10 * sec;
    tcp.c(now - 5 * sec, PSH | ACK, 100u + i, true);
    tcp.s(now - 4 * sec, PSH | ACK, 1000u + i, true);
    CHECK(interval_ends(now) == 1);
    CHECK(interval_ends(now + 2 * sec) == 0); // no traffic, no update
  }
  tcp.c(t0 + 51 * sec, FIN | ACK, 52);
  tcp.s(t0 + 51 * sec + 1 * ms, FIN | ACK, 52);
  tcp.c(t0 + 51 * sec + 2 * ms, ACK, 52);
  CHECK(interval_ends(t0 + 60 * sec) == 1); // closed 9 s ago: final

  REQUIRE(all.size() == 6);
  CHECK(all.back().final());
  // Client: SYN 60, ACK 52, data 101..105, FIN 52, ACK 52; server: SYN/ACK 60, data 1001..1005,
  // FIN 52.
  check_counts(all.back().record, 9, 60 + 52 + 515 + 52 + 52, 7, 60 + 5015 + 52);
  TrafficDelta sum;
  for (size_t i = 0; i < all.size(); i++) {
    const auto &d = all[i].delta;
    if (i == 0)
      CHECK(d.from_ns == all[i].record.start_ns);
    else
      CHECK(d.from_ns == all[i - 1].delta.to_ns);
    CHECK(d.to_ns >= d.from_ns);
    sum.orig_pkts += d.orig_pkts;
    sum.orig_bytes += d.orig_bytes;
    sum.resp_pkts += d.resp_pkts;
    sum.resp_bytes += d.resp_bytes;
  }
  check_delta(sum, 9, 731, 7, 5127);
}

TEST_CASE("shutdown: open connections final as shutdown, closed ones as fin") {
  Lab lab;
  Tcp open{lab.kernel, web};
  open.handshake(t0);
  Tcp closed{lab.kernel, v4("10.0.0.1", 40003, "10.0.0.2", 80, IPPROTO_TCP)};
  closed.exchange(t0, 10, 10);
  auto dns = v4("10.0.0.1", 40000, "10.0.0.3", 53, IPPROTO_UDP);
  lab.kernel.send({dns, 0, 60, true, t0});
  lab.sweep(t0 + 1 * sec);
  CHECK(lab.updates(t0 + 1 * sec).size() == 3);
  open.c(t0 + 2 * sec, PSH | ACK, 152, true);
  lab.sweep(t0 + 3 * sec);

  auto u = lab.tracker.shutdown(t0 + 3 * sec);
  REQUIRE(u.size() == 3);
  for (const auto &x : u) {
    CHECK(x.final());
    if (x.record.src_port == 40000 && text_of(x.record).proto == "TCP") {
      CHECK(x.record.close_reason == CloseReason::shutdown);
      CHECK(state_name(x.record.state) == "S1");
      check_delta(x.delta, 1, 152, 0, 0);
    } else if (text_of(x.record).proto == "TCP") {
      CHECK(x.record.close_reason == CloseReason::fin);
      check_delta(x.delta, 0, 0, 0, 0);
    } else {
      CHECK(x.record.close_reason == CloseReason::shutdown);
    }
  }
  CHECK(lab.updates(t0 + 4 * sec).empty());
  CHECK(lab.tracker.open_connections().empty());
  CHECK(lab.tracker.flow_totals().empty());
  CHECK(lab.tracker.connections_finished() == 3);
}

TEST_CASE("flow totals add up the connections of a key, also after it left the map") {
  Lab lab;
  Tcp tcp{lab.kernel, web};
  three_connections(tcp);
  lab.interval(t0 + 3 * sec);
  auto totals = lab.tracker.flow_totals();
  REQUIRE(totals.size() == 1);
  // web's key is canonical as given: side 0 is the client.
  CHECK(totals[0].pkts[0] == 5 + 5 + 3);
  CHECK(totals[0].bytes[0] == 368 + 468 + 464);
  CHECK(totals[0].pkts[1] == 4 + 4 + 1);
  CHECK(totals[0].bytes[1] == 1216 + 2216 + 60);
  auto open = lab.tracker.open_connections();
  REQUIRE(open.size() == 1);
  CHECK(lab.tracker.open_count() == 1);
  CHECK(open[0].start_ns == uint64_t(epoch_offset) + t0 + 2 * sec);
  CHECK_FALSE(open[0].final());

  lab.sweep(t0 + 2 * sec + 301 * sec); // idle: deleted
  lab.updates(t0 + 303 * sec);
  lab.sweep(t0 + 304 * sec); // the key is gone from the map: retired
  auto retired = lab.tracker.flow_totals();
  REQUIRE(retired.size() == 1);
  CHECK(retired[0].pkts[0] == 5 + 5 + 3);
  CHECK(retired[0].bytes[1] == 1216 + 2216 + 60);
  CHECK(lab.tracker.open_connections().empty());
}

TEST_CASE("retired flow totals are bounded: the smallest go first, counted") {
  TrackerConfig config = lab_config();
  config.max_retired = 4;
  Lab lab(config);
  // Five UDP flows of 1..5 datagrams of 100 bytes, then idle and gone.
  for (uint16_t n = 1; n <= 5; n++)
    for (uint16_t i = 0; i < n; i++)
      lab.kernel.send({v4("10.0.0.1", uint16_t(5000 + n), "10.0.0.2", 53, IPPROTO_UDP), 0, 100,
                       true, t0 + i * ms});
  lab.interval(t0 + sec);
  lab.sweep(t0 + 62 * sec); // idle past 60 s: deleted
  lab.updates(t0 + 62 * sec);
  lab.sweep(t0 + 63 * sec); // retired: 5 keys, over the bound of 4
  auto totals = lab.tracker.flow_totals();
  // One quarter of 5 (rounded down) is 1: the flow of one datagram goes.
  REQUIRE(totals.size() == 4);
  for (const auto &t : totals)
    CHECK(t.pkts[0] >= 2);
  CHECK(lab.tracker.stats().totals_dropped == 1);
}

TEST_CASE("a restarted agent reading the same maps gives the same uids") {
  Lab lab;
  Tcp tcp{lab.kernel, web};
  three_connections(tcp);
  auto before = lab.interval(t0 + 3 * sec);
  const ConnUpdate &open = started(before, t0 + 2 * sec);

  Tracker restarted(lab_config()); // adopts the pinned maps, no events
  restarted.on_flows(lab.kernel.snapshot(), t0 + 4 * sec);
  auto after = restarted.take_updates(t0 + 4 * sec);
  REQUIRE(after.size() == 1);
  CHECK(after[0].record.uid == open.record.uid);
  CHECK(after[0].record.start_ns == open.record.start_ns);
}

TEST_CASE("a restarted agent counts on from what the database holds") {
  Lab lab;
  Tcp tcp{lab.kernel, web};
  tcp.handshake(t0);                     // client SYN 60, ACK 52; server SYN/ACK 60
  tcp.c(t0 + 100 * ms, ACK, 1052, true); // 1000 bytes of data
  auto before = lab.interval(t0 + sec);
  REQUIRE(before.size() == 1);
  const ConnRecord &stored = before[0].record; // what the first agent wrote
  CHECK(stored.orig_bytes == 60 + 52 + 1052);

  // The agent dies; the connection goes on while none runs.
  tcp.c(t0 + 2 * sec, ACK, 552, true);
  tcp.s(t0 + 2 * sec + ms, ACK, 52);

  Tracker restarted(lab_config());
  restarted.resume({{stored.uid, stored.orig_pkts, stored.orig_bytes, stored.resp_pkts,
                     stored.resp_bytes, stored.end_ns},
                    {*Uid::from("Cgone"), 1, 60, 0, 0, stored.end_ns}});
  CHECK(restarted.take_unresumed().empty()); // not before the first updates
  restarted.on_flows(lab.kernel.snapshot(), t0 + 3 * sec);
  auto after = restarted.take_updates(t0 + 3 * sec);
  REQUIRE(after.size() == 1);
  CHECK(after[0].record.uid == stored.uid);
  // Only the traffic of the gap: one data segment and its ACK.
  CHECK(after[0].delta.orig_pkts == 1);
  CHECK(after[0].delta.orig_bytes == 552);
  CHECK(after[0].delta.resp_pkts == 1);
  CHECK(after[0].delta.resp_bytes == 52);
  CHECK(after[0].delta.from_ns == stored.end_ns);
  CHECK(restarted.take_unresumed() == std::vector<Uid>{*Uid::from("Cgone")});
  CHECK(restarted.take_unresumed().empty()); // handed out once
}

TEST_CASE("late events of a deleted connection make no phantom") {
  Lab lab;
  Tcp tcp{lab.kernel, web};
  tcp.exchange(t0, 100, 1000);
  auto late = lab.kernel.take_events(); // not delivered before the delete
  lab.sweep(t0 + 6 * sec);
  REQUIRE(lab.updates(t0 + 6 * sec).size() == 1);
  for (const auto &e : late)
    lab.tracker.on_event(e);
  CHECK(lab.tracker.stats().events_unmatched == late.size());
  lab.sweep(t0 + 7 * sec);
  CHECK(lab.updates(t0 + 7 * sec).empty());

  // The next connection on the key: a new entry, generation 0 again.
  tcp.exchange(t0 + 10 * sec, 5, 5);
  auto u = lab.interval(t0 + 11 * sec);
  REQUIRE(u.size() == 1);
  check_counts(u[0].record, 5, 273, 4, 221);
  CHECK(u[0].record.history.view() == "ShADadFf");
  CHECK(u[0].record.rtt_ns == 2 * ms);
}

TEST_CASE("a final value that never comes: last snapshot, counted") {
  Lab lab;
  Tcp tcp{lab.kernel, web};
  tcp.exchange(t0, 100, 1000);
  lab.interval(t0 + 1 * sec);
  tcp.c(t0 + 2 * sec, SYN, 60); // split; the ended entry gets lost
  lab.kernel.take_ended();
  lab.deliver();
  lab.read_flows(t0 + 3 * sec);
  CHECK(lab.updates(t0 + 3 * sec).size() == 1); // only the new connection
  lab.read_flows(t0 + 4 * sec);
  lab.read_flows(t0 + 5 * sec);
  auto u = lab.updates(t0 + 5 * sec);
  REQUIRE(u.size() == 1);
  CHECK(u[0].final());
  CHECK(u[0].record.start_ns == uint64_t(epoch_offset) + t0);
  check_counts(u[0].record, 5, 368, 4, 1216);
  CHECK(lab.tracker.stats().finals_from_snapshot == 1);
}

TEST_CASE("a flow-map read older than a final value makes no duplicate") {
  Lab lab;
  Tcp tcp{lab.kernel, web};
  tcp.exchange(t0, 100, 1000);
  lab.sweep(t0 + 1 * sec);
  auto old_read = lab.kernel.snapshot(); // generation 0, read ...
  tcp.c(t0 + 2 * sec, SYN, 60);          // ... just before the program splits
  lab.drain_ended();                     // the agent drains the ended map first
  lab.tracker.on_flows(old_read, t0 + 2 * sec);
  auto u = lab.interval(t0 + 3 * sec);
  REQUIRE(u.size() == 2);
  const ConnUpdate &a = started(u, t0), &b = started(u, t0 + 2 * sec);
  CHECK(a.final());
  check_counts(a.record, 5, 368, 4, 1216);
  CHECK_FALSE(b.final());
  check_counts(b.record, 1, 60, 0, 0);
}

TEST_CASE("events arriving after their connection's final value are dropped at once") {
  Lab lab;
  Tcp tcp{lab.kernel, web};
  tcp.exchange(t0, 100, 1000);
  tcp.c(t0 + 2 * sec, SYN, 60); // split
  auto late = lab.kernel.take_events();
  lab.drain_ended();
  lab.read_flows(t0 + 3 * sec);
  REQUIRE(lab.updates(t0 + 3 * sec).size() == 2);
  size_t old_events = 0;
  for (const auto &e : late) {
    lab.tracker.on_event(e);
    old_events += e.gen == 0 && e.type != TCF_EV_ENDED;
  }
  CHECK(old_events == 8); // NEW_FLOW and seven SEEN of generation 0
  CHECK(lab.tracker.stats().events_unmatched == old_events);
  CHECK(lab.updates(t0 + 4 * sec).empty());
  CHECK(lab.tracker.open_connections().size() == 1);
}

TEST_CASE("the originator is fixed by the first update, so deltas add up") {
  Lab lab;
  // Between two ephemeral ports the first sender is taken as originator ...
  auto a2b = v4("10.0.0.1", 40000, "10.0.0.2", 50000, IPPROTO_TCP);
  lab.kernel.send({a2b, PSH | ACK, 500, true, t0});
  auto first = lab.interval(t0 + 1 * sec);
  REQUIRE(first.size() == 1);
  CHECK(first[0].record.src_port == 40000);
  CHECK(first[0].record.orig_guessed);
  // ... and stays so when the other side later sends a SYN (which would
  // otherwise make it the originator).
  lab.kernel.send({reversed(a2b), SYN, 60, false, t0 + 2 * sec});
  lab.kernel.send({reversed(a2b), PSH | ACK, 700, true, t0 + 3 * sec});
  lab.sweep(t0 + 4 * sec);
  auto u = lab.tracker.shutdown(t0 + 4 * sec);
  REQUIRE(u.size() == 1);
  CHECK(u[0].record.src_port == 40000);
  check_counts(u[0].record, 1, 500, 2, 760);
  check_delta(u[0].delta, 0, 0, 2, 760);
}

TEST_CASE("a torn read in the middle of a split is skipped") {
  Lab lab;
  Tcp tcp{lab.kernel, web};
  tcp.exchange(t0, 100, 1000);
  lab.interval(t0 + 1 * sec);
  // The next generation's number with the old connection's counters and
  // first packet time: what a read racing the program's split can see.
  auto torn = lab.kernel.snapshot();
  REQUIRE(torn.size() == 1);
  torn[0].val.gen = 1;
  lab.tracker.on_flows(torn, t0 + 2 * sec);
  CHECK(lab.updates(t0 + 2 * sec).empty());

  tcp.c(t0 + 3 * sec, SYN, 60);
  auto u = lab.interval(t0 + 4 * sec);
  REQUIRE(u.size() == 2);
  const ConnUpdate &a = started(u, t0), &b = started(u, t0 + 3 * sec);
  CHECK(a.final());
  check_delta(a.delta, 0, 0, 0, 0);
  check_counts(b.record, 1, 60, 0, 0);
  check_delta(b.delta, 1, 60, 0, 0);
  CHECK(lab.tracker.stats().finals_from_snapshot == 0);
  CHECK(lab.tracker.stats().counter_regressions == 0);
}

TEST_CASE("events of a forgotten connection do not leak into the next one on the key") {
  Lab lab;
  Tcp tcp{lab.kernel, web};
  tcp.exchange(t0, 100, 1000); // the client closes first
  auto late = lab.kernel.take_events();
  lab.sweep(t0 + 6 * sec); // deleted
  lab.sweep(t0 + 7 * sec); // and forgotten
  REQUIRE(lab.updates(t0 + 7 * sec).size() == 1);
  for (const auto &e : late)
    lab.tracker.on_event(e);

  // The next connection: RTT 5 ms, the server closes first.
  uint64_t t = t0 + 10 * sec;
  tcp.c(t, SYN, 60);
  tcp.s(t + 1 * ms, SYN | ACK, 60);
  tcp.c(t + 5 * ms, ACK, 52);
  tcp.s(t + 6 * ms, FIN | ACK, 52);
  tcp.c(t + 7 * ms, FIN | ACK, 52);
  auto u = lab.interval(t + 1 * sec);
  REQUIRE(u.size() == 1);
  CHECK(u[0].record.history.view() == "ShAfF");
  CHECK(u[0].record.rtt_ns == 5 * ms);
  check_counts(u[0].record, 3, 164, 2, 112);
}

TEST_CASE("link-layer flows: MAC addresses, no ports, first sender guessed") {
  Lab lab;
  tcf_flow_key arp{};
  const uint8_t mac_a[6] = {0x02, 0, 0, 0, 0, 0x0a}, mac_b[6] = {0x02, 0, 0, 0, 0, 0x0b};
  std::memcpy(arp.addr[0], mac_b, 6); // the request comes from b
  std::memcpy(arp.addr[1], mac_a, 6);
  arp.ifindex = 7;
  arp.ethertype = ETH_P_ARP;
  arp.kind = TCF_KIND_LINK;
  lab.kernel.send({arp, 0, 60, true, t0});
  lab.kernel.send({reversed(arp), 0, 60, true, t0 + 1 * ms});
  auto u = lab.interval(t0 + 1 * sec);
  REQUIRE(u.size() == 1);
  const ConnRecord &r = u[0].record;
  CHECK(text_of(r).proto == "ARP");
  CHECK(text_of(r).iface == "if7");
  CHECK(text_of(r).src_addr == "02:00:00:00:00:0b");
  CHECK(text_of(r).dst_addr == "02:00:00:00:00:0a");
  CHECK(r.src_port == 0);
  CHECK(r.dst_port == 0);
  CHECK(r.orig_guessed);
  CHECK(state_name(r.state) == "OTH");
  CHECK(r.history.view() == "Dd");
  check_counts(r, 1, 60, 1, 60);
}
