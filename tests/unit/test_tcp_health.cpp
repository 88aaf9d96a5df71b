// TCP health on the kernel model: retransmissions, segments out of order,
// zero windows and round trips, counted by bpf/conn.h and reported by the
// tracker. The expectations are the segments each test sends and when.
#include "rig.h"

#include <doctest/doctest.h>

using namespace tcflows;
using namespace model;

namespace {

std::string history(const ConnRecord &r) { return std::string(r.history.view()); }

// Handshake `gap` apart: the client's ACK completes it 2 * gap after the SYN.
void handshake(Kernel &k, Conversation &c, uint64_t gap = ms) {
  k.send(c.client(SYN));
  k.advance(gap);
  k.send(c.server(SYN | ACK));
  k.advance(gap);
  k.send(c.client(ACK));
  k.advance(gap);
}

// Closes with FIN both ways, 1 ms apart; the record once final.
ConnRecord close_and_record(Rig &rig, Conversation &c) {
  rig.k.send(c.client(ACK | FIN));
  rig.k.advance(ms);
  rig.k.send(c.server(ACK | FIN));
  rig.k.advance(ms);
  rig.k.send(c.client(ACK));
  rig.after(6 * sec);
  rig.after(1 * sec);
  return rig.final_of(c);
}

// A client segment with `payload` bytes at `seq`.
Packet client_data(Conversation &c, uint32_t payload, uint32_t seq = Conversation::next) {
  return c.client(ACK | PSH, 40 + payload, true, seq);
}

// New client data, acknowledged `rtt` later.
void round_trip(Kernel &k, Conversation &c, uint64_t rtt) {
  k.send(client_data(c, 100));
  k.advance(rtt);
  k.send(c.server(ACK));
}

// Round trips measured: how many, the shortest and the longest.
void check_round_trips(const TcpHealth &t, uint64_t samples, uint64_t min_ns, uint64_t max_ns) {
  CHECK(t.rtt_samples == samples);
  CHECK(t.rtt_min_ns == min_ns);
  CHECK(t.rtt_max_ns == max_ns);
}

// A pure ACK from the server acknowledging the client's sequence `ack`.
Packet server_ack(Conversation &c, uint32_t ack) {
  Packet p = c.server(ACK);
  p.ack = ack;
  return p;
}

} // namespace

TEST_CASE("tcp health: a data segment sent again is a retransmission of its sender") {
  Rig rig;
  Conversation c("10.0.0.1", 40000, "10.0.0.2", 80);
  handshake(rig.k, c);
  uint32_t seq = c.next_seq[0];
  rig.k.send(client_data(c, 100));
  rig.k.advance(200 * ms);
  rig.k.send(client_data(c, 100, seq)); // the same segment again
  c.next_seq[0] = seq + 100;
  rig.k.send(c.server(ACK | PSH, 540, true));
  auto r = close_and_record(rig, c);
  REQUIRE(r.orig_tcp);
  REQUIRE(r.resp_tcp);
  CHECK(r.orig_tcp->retx_pkts == 1);
  CHECK(r.orig_tcp->retx_bytes == 140);
  CHECK(r.orig_tcp->ooo_pkts == 0);
  CHECK(r.resp_tcp->retx_pkts == 0);
  CHECK(history(r) == "ShADTdFf");
  check_record(r, c);
}

TEST_CASE("tcp health: SYNs, FINs and keep-alives sent again are not data retransmissions") {
  Rig rig;
  Conversation c("10.0.0.1", 40000, "10.0.0.2", 80);
  rig.k.send(c.client(SYN, 60, false, 1000));
  rig.k.advance(1 * sec);
  rig.k.send(c.client(SYN, 60, false, 1000));
  rig.k.send(c.server(SYN | ACK));
  rig.k.send(c.client(ACK));
  rig.k.send(client_data(c, 100));
  uint32_t next = c.next_seq[0];
  rig.k.advance(10 * sec);
  rig.k.send(client_data(c, 1, next - 1));        // a keep-alive with one byte
  rig.k.send(c.client(ACK, 40, false, next - 1)); // and with none
  c.next_seq[0] = next;
  auto r = close_and_record(rig, c);
  REQUIRE(r.orig_tcp);
  CHECK(r.orig_tcp->retx_pkts == 0);
  CHECK(r.orig_tcp->ooo_pkts == 0);
}

TEST_CASE("tcp health: a segment filling a hole soon is out of order, late a retransmission") {
  Rig rig;
  Conversation c("10.0.0.1", 40000, "10.0.0.2", 80);
  handshake(rig.k, c); // a round trip of 2 ms
  uint32_t a = c.next_seq[0], b = a + 100, cc = b + 100;
  rig.k.send(client_data(c, 100, a));
  rig.k.advance(100 * us);
  rig.k.send(client_data(c, 100, cc)); // b is missing here
  rig.k.advance(100 * us);
  rig.k.send(client_data(c, 100, b)); // 0.1 ms later: out of order
  rig.k.advance(50 * ms);
  rig.k.send(client_data(c, 100, b)); // 50 ms later: retransmitted
  c.next_seq[0] = cc + 100;
  auto r = close_and_record(rig, c);
  REQUIRE(r.orig_tcp);
  CHECK(r.orig_tcp->ooo_pkts == 1);
  CHECK(r.orig_tcp->retx_pkts == 1);
  CHECK(r.orig_tcp->retx_bytes == 140);
}

TEST_CASE("tcp health: zero windows per direction, not on SYN, FIN or RST") {
  Rig rig;
  Conversation c("10.0.0.1", 40000, "10.0.0.2", 80);
  handshake(rig.k, c);
  rig.k.send(client_data(c, 100));
  for (int i = 0; i < 3; i++) {
    Packet full = c.server(ACK);
    full.window = 0;
    rig.k.send(full);
  }
  Packet rst = c.server(RST | ACK);
  rst.window = 0;
  rig.k.send(rst);
  rig.after(6 * sec);
  rig.after(1 * sec);
  auto r = rig.final_of(c);
  REQUIRE(r.resp_tcp);
  CHECK(r.resp_tcp->zero_windows == 3);
  CHECK(r.orig_tcp->zero_windows == 0);
  CHECK(history(r) == "ShADawr");
}

TEST_CASE("tcp health: letters repeat at the 1st, 10th and 100th occurrence, as Zeek's") {
  Rig rig;
  Conversation c("10.0.0.1", 40000, "10.0.0.2", 80);
  handshake(rig.k, c);
  uint32_t seq = c.next_seq[0];
  rig.k.send(client_data(c, 100));
  rig.k.advance(10 * ms);
  for (int i = 0; i < 9; i++) // 1st .. 9th
    rig.k.send(client_data(c, 100, seq));
  rig.k.send(c.server(ACK | PSH, 140, true));
  rig.k.send(client_data(c, 100, seq)); // the 10th, after the responder's data
  for (int i = 0; i < 90; i++)          // the 100th
    rig.k.send(client_data(c, 100, seq));
  c.next_seq[0] = seq + 100;
  auto r = close_and_record(rig, c);
  REQUIRE(r.orig_tcp);
  CHECK(r.orig_tcp->retx_pkts == 100);
  CHECK(history(r) == "ShADTdTFfT");
}

TEST_CASE("tcp health: round trips from acknowledgements, per direction") {
  Rig rig;
  Conversation c("10.0.0.1", 40000, "10.0.0.2", 80);
  handshake(rig.k, c); // the SYN's and the SYN/ACK's round trips
  for (uint32_t rtt = 3; rtt <= 9; rtt += 3) {
    round_trip(rig.k, c, rtt * ms);
    rig.k.advance(10 * ms);
  }
  auto r = close_and_record(rig, c);
  REQUIRE(r.orig_tcp);
  // The SYN acknowledged after 1 ms, the data after 3, 6 and 9 ms, the FIN after 1.
  check_round_trips(*r.orig_tcp, 5, 1 * ms, 9 * ms);
  CHECK(r.orig_tcp->rtt_mean_ns == (1 + 3 + 6 + 9 + 1) * ms / 5);
  // The SYN/ACK and the FIN, each acknowledged 1 ms later; pure ACKs are not timed.
  check_round_trips(*r.resp_tcp, 2, 1 * ms, 1 * ms);
}

TEST_CASE("tcp health: an ACK times the segment it reaches, not one sent before it") {
  Rig rig;
  Conversation c("10.0.0.1", 40000, "10.0.0.2", 80);
  handshake(rig.k, c);
  rig.k.send(client_data(c, 100)); // timed
  rig.k.advance(100 * us);
  rig.k.send(client_data(c, 100)); // in flight behind it
  rig.k.advance(900 * us);
  rig.k.send(server_ack(c, c.next_seq[0] - 100)); // the first only: 1 ms
  rig.k.send(client_data(c, 100));                // timed
  rig.k.advance(50 * us);
  rig.k.send(server_ack(c, c.next_seq[0] - 100)); // the second's, not this one's
  rig.k.advance(2 * ms);
  rig.k.send(c.server(ACK)); // 2.05 ms
  auto r = close_and_record(rig, c);
  REQUIRE(r.orig_tcp);
  // The SYN (1 ms), the two timed segments and the FIN (1 ms).
  check_round_trips(*r.orig_tcp, 4, 1 * ms, 2050 * us);
}

TEST_CASE("tcp health: round trips from acknowledgements, none across a retransmission") {
  Rig rig;
  Conversation c("10.0.0.1", 40000, "10.0.0.2", 80);
  handshake(rig.k, c, 2 * ms);
  uint32_t seq = c.next_seq[0];
  rig.k.send(client_data(c, 100)); // timed
  rig.k.advance(300 * ms);
  rig.k.send(client_data(c, 100, seq)); // sent again: the ACK no longer tells which
  rig.k.advance(1 * ms);
  rig.k.send(c.server(ACK));
  round_trip(rig.k, c, 5 * ms); // timed again
  auto r = close_and_record(rig, c);
  REQUIRE(r.orig_tcp);
  CHECK(r.orig_tcp->retx_pkts == 1);
  // The SYN (2 ms), the second segment (5 ms) and the FIN (1 ms).
  check_round_trips(*r.orig_tcp, 3, 1 * ms, 5 * ms);
}

TEST_CASE("tcp health: no round trip across a hole filled soon") {
  Rig rig;
  Conversation c("10.0.0.1", 40000, "10.0.0.2", 80);
  handshake(rig.k, c); // the SYN acknowledged after 1 ms
  uint32_t a = c.next_seq[0], b = a + 100, d = b + 100;
  rig.k.send(client_data(c, 100, a)); // timed
  rig.k.send(client_data(c, 100, b)); // lost on the way
  rig.k.advance(1 * ms);
  rig.k.send(server_ack(c, b));       // a's round trip: 1 ms
  rig.k.send(client_data(c, 100, d)); // timed, behind the hole
  rig.k.advance(200 * us);
  rig.k.send(server_ack(c, b));       // a duplicate ACK: the hole
  rig.k.send(client_data(c, 100, b)); // b again, soon: out of order
  rig.k.advance(5 * ms);
  rig.k.send(server_ack(c, d + 100)); // the wait for the hole, not a round trip
  c.next_seq[0] = d + 100;
  round_trip(rig.k, c, 2 * ms); // timed again
  auto r = close_and_record(rig, c);
  REQUIRE(r.orig_tcp);
  CHECK(r.orig_tcp->ooo_pkts == 1);
  // The SYN (1 ms), a (1 ms), the segment after the hole's (2 ms) and the FIN (1 ms).
  check_round_trips(*r.orig_tcp, 4, 1 * ms, 2 * ms);
}

TEST_CASE("tcp health: none for other protocols") {
  Rig rig;
  Conversation c("10.0.0.1", 40000, "10.0.0.2", 53, 17);
  rig.k.send(c.client(0, 60, true));
  rig.k.send(c.server(0, 120, true));
  rig.after(61 * sec);
  rig.after(1 * sec);
  auto r = rig.final_of(c);
  CHECK_FALSE(r.orig_tcp);
  CHECK_FALSE(r.resp_tcp);
}
