// The connection protocol between the TC program (bpf/conn.h, run here on
// the kernel model) and the tracker, with its races scripted as
// interleavings of simulated CPUs and the agent. Every test's expectations
// are the packets it sent.
#include "rig.h"

#include "kernel/index.h"
#include "track/zeek_state.h"

#include <doctest/doctest.h>

using namespace tcflows;
using namespace model;

namespace {

// Closes the conversation's connection with FIN both ways.
void close(Kernel &k, Conversation &c) {
  k.send(c.client(ACK | FIN));
  k.send(c.server(ACK | FIN));
  k.send(c.client(ACK));
}

std::string history(const ConnRecord &r) { return std::string(r.history.view()); }

} // namespace

TEST_CASE("protocol: one short TCP connection, one exact record after the linger") {
  Rig rig;
  Conversation c("10.0.0.1", 40000, "10.0.0.2", 80);
  c.short_tcp(rig.k);
  rig.sweep();
  CHECK(rig.finals().empty()); // lingering
  rig.after(6 * sec);          // over: sealed
  CHECK(rig.finals().empty());
  rig.after(1 * sec); // final after the grace period
  auto r = rig.final_of(c);
  check_record(r, c);
  CHECK(history(r) == "ShADdFf");
  CHECK(r.state == ConnState::SF);
  CHECK(r.close_reason == CloseReason::fin);
  CHECK(rig.k.counters[TCF_CTR_CONNECTIONS] == 1);
  rig.check_deltas();
  // The slot goes back, its index entry gone.
  rig.after(1 * sec);
  CHECK(rig.k.mapped() == 0);
  CHECK(rig.k.pool.free == int64_t(rig.k.pool.used));
}

TEST_CASE("protocol: a 5-tuple reused back to back is one record per connection") {
  Rig rig;
  std::vector<Conversation> convs;
  for (int i = 0; i < 5; i++) {
    convs.emplace_back("10.0.0.1", 40000, "10.0.0.2", 80);
    convs.back().short_tcp(rig.k, 10 * 1000);
    if (i == 2)
      rig.sweep(); // a sweep in the middle changes nothing
  }
  rig.after(7 * sec);
  rig.after(1 * sec);
  auto finals = rig.finals_of(convs[0]);
  REQUIRE(finals.size() == 5);
  std::sort(finals.begin(), finals.end(),
            [](const auto &a, const auto &b) { return a.start_ns < b.start_ns; });
  for (int i = 0; i < 5; i++) {
    check_record(finals[i], convs[i]);
    CHECK(history(finals[i]) == "ShADdFf");
  }
  rig.check_deltas();
}

TEST_CASE("protocol: checkpoints of an open connection add up to its final") {
  Rig rig;
  Conversation c("10.0.0.1", 40000, "10.0.0.2", 443);
  rig.k.send(c.client(SYN));
  rig.k.send(c.server(SYN | ACK));
  rig.k.send(c.client(ACK));
  for (int round = 0; round < 5; round++) {
    rig.k.send(c.client(ACK | PSH, 1000, true));
    rig.k.send(c.server(ACK));
    rig.after(1 * sec);
  }
  // A packet half counted while the agent reads: its packets are in, its bytes not yet.
  rig.k.start(1, c.client(ACK | PSH, 500, true));
  rig.k.cpus[1]->run_to("add64");
  rig.k.cpus[1]->step(1); // the packets' add, not yet the bytes'
  CHECK(rig.k.cpus[1]->next() == "add64");
  rig.sweep();
  CHECK(rig.updates.back().delta.orig_pkts == 1);
  CHECK(rig.updates.back().delta.orig_bytes == 0);
  rig.k.cpus[1]->finish();
  close(rig.k, c);
  rig.after(6 * sec);
  rig.after(1 * sec);
  check_record(rig.final_of(c), c);
  rig.check_deltas();
  CHECK(rig.updates.size() >= 7);
}

TEST_CASE("protocol: the agent removes an entry while a packet swaps a new slot into it") {
  // The old connection is sealed (idle); at the next sweep its final is taken
  // and its index entry removed. A packet of the next connection has found
  // that entry and is about to swap its new slot in: one of the two
  // compare-and-swaps wins, and the next connection is one record either way.
  for (bool agent_first : {true, false}) {
    CAPTURE(agent_first);
    Rig rig;
    Conversation old("10.0.0.1", 40000, "10.0.0.2", 53, 17);
    rig.k.send(old.client(0, 60, true));
    rig.k.send(old.server(0, 120, true));
    rig.after(61 * sec); // idle: sealed
    Conversation next("10.0.0.1", 40000, "10.0.0.2", 53, 17);
    Packet first = next.client(0, 70, true);
    if (agent_first) // after the sweep's grace period, before its scan
      rig.table.before_scan = [&] {
        rig.table.before_scan = nullptr;
        rig.k.start(0, first);
        rig.k.cpus[0]->run_to("cas64"); // found the sealed slot, took a new one
      };
    else
      rig.k.send(first);
    rig.after(1 * sec); // the old one final, its entry removed
    rig.k.cpus[0]->finish();
    rig.k.send(next.server(0, 130, true));
    CHECK(rig.k.counters[TCF_CTR_RETRIES] == (agent_first ? 1u : 0u));
    check_record(rig.final_of(old), old);
    rig.after(61 * sec);
    rig.after(1 * sec);
    auto finals = rig.finals_of(next);
    REQUIRE(finals.size() == 2);
    auto r = finals[0].start_ns > finals[1].start_ns ? finals[0] : finals[1];
    check_record(r, next);
    CHECK(history(r) == "Dd");
    CHECK(rig.tracker->stats().orphans_joined == 0);
    rig.check_deltas();
  }
}

TEST_CASE("protocol: pruning a tombstone while a packet fills the entry after it") {
  // All keys share one home (digests masked to nothing). The old connection's
  // entry is at the home; the first packet of a connection on another key
  // passed it and is about to fill the empty entry after it, when the agent
  // removes the old entry and prunes its tombstone (an empty entry follows
  // it). The packet's entry is then past an empty one: the next packet of its
  // key no longer finds it and starts a slot at the home. The first slot is
  // an orphan: found at the next sweeps and joined; the connection is one
  // record.
  Rig rig;
  rig.k.cfg.digest_mask = 0;
  Conversation old("10.0.0.1", 40000, "10.0.0.2", 53, 17);
  rig.k.send(old.client(0, 60, true));
  rig.after(61 * sec);
  uint64_t old_entry = rig.k.index[0];
  rig.after(1 * sec); // final; its entry a tombstone, pruned right away
  check_record(rig.final_of(old), old);
  rig.k.index[0] = old_entry; // as it was before the removal
  Conversation next("10.0.0.1", 40001, "10.0.0.2", 53, 17);
  rig.k.start(0, next.client(0, 70, true));
  rig.k.cpus[0]->run_to("cas64");  // passed the old entry, to fill entry 1
  rig.k.index[0] = TCF_INDEX_TOMB; // the agent removes the old entry
  CHECK(IndexView(rig.table.index(), 0).prune() == 1);
  rig.k.cpus[0]->finish();
  CHECK(TCF_INDEX_SLOT(rig.k.index[1]) != 0);
  rig.k.send(next.server(0, 130, true)); // starts a slot at entry 0
  CHECK(TCF_INDEX_SLOT(rig.k.index[0]) != 0);
  rig.after(1 * sec); // not reached: held
  rig.after(1 * sec); // still not reached after a grace period: joined
  CHECK(rig.tracker->stats().orphans_joined == 1);
  rig.k.send(next.client(0, 80, true));
  rig.after(61 * sec);
  rig.after(1 * sec);
  check_record(rig.final_of(next), next);
  CHECK(history(rig.final_of(next)) == "Dd");
  rig.check_deltas();
  rig.after(1 * sec);
  CHECK(rig.k.mapped() == 0);
}

TEST_CASE("protocol: new keys take the tombstones of their probe: runs do not grow") {
  // All keys share one home. A connection that stays open holds entry 1, so
  // the tombstone at entry 0 is never at the end of its run and never
  // pruned. Each new 5-tuple takes that tombstone; were new keys put at the
  // end of the run, the 17th would find no entry within reach.
  Rig rig;
  rig.k.cfg.digest_mask = 0;
  Conversation first("10.0.0.1", 30000, "10.0.0.2", 53, 17);
  rig.k.send(first.client(0, 60, true));
  Conversation stays("10.0.0.1", 30001, "10.0.0.2", 53, 17);
  rig.k.send(stays.client(0, 60, true));
  std::vector<Conversation> churn;
  for (int i = 0; i < 2 * TCF_PROBES; i++) {
    rig.after(40 * sec);
    rig.k.send(stays.client(0, 60, true));
    rig.after(40 * sec); // the previous one idle: sealed, final, its entry a tombstone
    churn.emplace_back("10.0.0.1", uint16_t(40000 + i), "10.0.0.2", 53, 17);
    rig.k.send(churn.back().client(0, 60, true));
    CHECK(TCF_INDEX_SLOT(rig.k.index[0]) != 0); // in the tombstone
  }
  rig.after(61 * sec);
  rig.after(1 * sec);
  CHECK(rig.k.counters[TCF_CTR_FLOW_FULL] == 0);
  check_record(rig.final_of(first), first);
  for (const auto &c : churn)
    check_record(rig.final_of(c), c);
  rig.check_deltas();
}

TEST_CASE("protocol: two CPUs start the next connection at once: one slot wins, none is lost") {
  Rig rig;
  Conversation old("10.0.0.1", 40000, "10.0.0.2", 80);
  old.short_tcp(rig.k, 10 * 1000);
  // Within the linger: the slot is still ACTIVE; a SYN ends it. The SYN and
  // its retransmission race on two CPUs up to the index entry's swap.
  Conversation next("10.0.0.1", 40000, "10.0.0.2", 80);
  rig.k.start(0, next.client(SYN, 60, false, 7000));
  rig.k.start(1, next.client(SYN, 60, false, 7000));
  rig.k.cpus[0]->run_to("cas64");
  rig.k.cpus[1]->run_to("cas64");
  rig.k.cpus[0]->finish();
  rig.k.cpus[1]->finish(); // loses the swap, gives its slot back, counts in the winner's
  CHECK(rig.k.counters[TCF_CTR_RETRIES] == 1);
  rig.k.send(next.server(SYN | ACK, 60, false, 9000));
  close(rig.k, next);
  rig.after(6 * sec);
  rig.after(1 * sec);
  auto finals = rig.finals_of(next);
  REQUIRE(finals.size() == 2);
  std::sort(finals.begin(), finals.end(),
            [](const auto &a, const auto &b) { return a.start_ns < b.start_ns; });
  check_record(finals[0], old);
  check_record(finals[1], next);
  CHECK(history(finals[1]) == "ShFfA");
  rig.after(1 * sec);
  CHECK(rig.k.pool.free == int64_t(rig.k.pool.used)); // every slot back, none leaked
}

TEST_CASE("protocol: a late packet of the old connection while the next one starts stays old") {
  Rig rig;
  Conversation old("10.0.0.1", 40000, "10.0.0.2", 80);
  for (Packet p : {old.client(SYN), old.server(SYN | ACK), old.client(ACK), old.client(ACK | FIN),
                   old.server(ACK | FIN)})
    rig.k.send(p);
  // The last ACK has found the old slot ACTIVE and is about to count...
  rig.k.start(0, old.client(ACK));
  rig.k.cpus[0]->run_to("add64");
  // ...when a SYN starts the next connection (the old slot becomes ENDED).
  Conversation next("10.0.0.1", 40000, "10.0.0.2", 80);
  rig.k.start(1, next.client(SYN, 60, false, 7000));
  rig.k.cpus[1]->finish();
  rig.k.cpus[0]->finish();
  rig.k.send(next.server(SYN | ACK, 60, false, 9000));
  rig.k.send(next.client(ACK));
  rig.after(1 * sec);
  rig.after(1 * sec);
  auto old_record = rig.final_of(old); // ENDED by the SYN: final already
  check_record(old_record, old);
  CHECK(history(old_record) == "ShAFf");
  close(rig.k, next);
  rig.after(6 * sec);
  rig.after(1 * sec);
  auto finals = rig.finals_of(next);
  REQUIRE(finals.size() == 2);
  auto r = finals[0].start_ns > finals[1].start_ns ? finals[0] : finals[1];
  check_record(r, next);
  CHECK(history(r) == "ShAFf");
}

TEST_CASE("protocol: SYN rules: a retransmitted SYN stays, a new ISN after no answer starts anew") {
  Rig rig;
  Conversation first("10.0.0.1", 40000, "10.0.0.2", 80);
  rig.k.send(first.client(SYN, 60, false, 1000));
  rig.k.advance(1 * sec);
  rig.k.send(first.client(SYN, 60, false, 1000)); // retransmission: same ISN
  rig.k.advance(1 * sec);
  Conversation second("10.0.0.1", 40000, "10.0.0.2", 80);
  rig.k.send(second.client(SYN, 60, false, 5555)); // a new ISN, the first never answered
  rig.k.send(second.server(SYN | ACK, 60, false, 9000));
  rig.k.send(second.client(ACK));
  // After a half-close, a SYN with another ISN starts anew too.
  rig.k.send(second.client(ACK | FIN));
  Conversation third("10.0.0.1", 40000, "10.0.0.2", 80);
  rig.k.send(third.client(SYN, 60, false, 8888));
  rig.after(1 * sec);
  rig.after(1 * sec);
  auto finals = rig.finals_of(first);
  REQUIRE(finals.size() == 2);
  std::sort(finals.begin(), finals.end(),
            [](const auto &a, const auto &b) { return a.start_ns < b.start_ns; });
  check_record(finals[0], first);
  CHECK(finals[0].state == ConnState::S0);
  check_record(finals[1], second);
  CHECK(history(finals[1]) == "ShAF");
  CHECK(rig.k.counters[TCF_CTR_CONNECTIONS] == 3);
}

TEST_CASE("protocol: idleness seen by a packet and by the agent at once") {
  for (bool agent_first : {false, true}) {
    CAPTURE(agent_first);
    Rig rig;
    Conversation old("10.0.0.1", 5353, "10.0.0.2", 53, 17);
    rig.k.send(old.client(0, 80, true));
    rig.k.send(old.server(0, 200, true));
    rig.k.advance(61 * sec);
    // A packet sees the old connection idle and is about to swap the mapping...
    Conversation next("10.0.0.1", 5353, "10.0.0.2", 53, 17);
    rig.k.start(0, next.client(0, 90, true));
    rig.k.cpus[0]->run_to("cas64");
    if (agent_first)
      rig.sweep(); // ...when the agent seals it (its grace period waits for the packet)
    rig.k.cpus[0]->finish();
    rig.k.send(next.server(0, 210, true));
    rig.after(1 * sec);
    rig.after(1 * sec);
    check_record(rig.final_of(old), old);
    rig.k.advance(61 * sec);
    rig.after(1 * sec);
    rig.after(1 * sec);
    auto finals = rig.finals_of(next);
    REQUIRE(finals.size() == 2);
    auto r = finals[0].start_ns > finals[1].start_ns ? finals[0] : finals[1];
    check_record(r, next);
    CHECK(r.close_reason == CloseReason::idle);
    rig.check_deltas();
  }
}

TEST_CASE("protocol: few free slots ring the doorbell once; none left is counted, not hidden") {
  Rig rig(16);
  rig.k.cfg.bell_below = 4;
  uint64_t untracked_pkts = 0, untracked_bytes = 0;
  for (int i = 0; i < 20; i++) {
    Conversation c("10.0.0.1", uint16_t(1000 + i), "10.0.0.2", 53, 17);
    Packet p = c.client(0, 100 + i, true);
    rig.k.send(p);
    if (i >= 16) {
      untracked_pkts++;
      untracked_bytes += p.bytes;
    }
  }
  CHECK(rig.k.doorbells == 1); // rung once, at 3 free, until the agent re-arms it
  CHECK(rig.k.counters[TCF_CTR_DOORBELLS] == 1);
  CHECK(rig.k.counters[TCF_CTR_FLOW_FULL] == 4);
  CHECK(rig.k.counters[TCF_CTR_UNTRACKED_PKTS] == untracked_pkts);
  CHECK(rig.k.counters[TCF_CTR_UNTRACKED_BYTES] == untracked_bytes);
  auto result = rig.sweep(); // re-arms
  CHECK(rig.k.pool.bell_armed == 1);
  CHECK(result.used == 16);
  CHECK(result.free == 0);
  // A doorbell the full ring buffer refuses is counted, and stays armed.
  rig.k.ring_room = 0;
  Conversation c("10.0.0.3", 2000, "10.0.0.2", 53, 17);
  rig.k.send(c.client(0, 100, true));
  CHECK(rig.k.counters[TCF_CTR_DOORBELLS_LOST] == 1);
  CHECK(rig.k.pool.bell_armed == 1);
  // The connections end; their slots come back through the free stack.
  rig.after(61 * sec);
  rig.after(1 * sec);
  rig.after(1 * sec);
  CHECK(rig.k.pool.free == 16);
  Conversation again("10.0.0.4", 3000, "10.0.0.2", 53, 17);
  rig.k.send(again.client(0, 100, true));
  CHECK(rig.k.counters[TCF_CTR_FLOW_FULL] == 5); // the refused one above
  CHECK(rig.k.pool.free == 15);
}

TEST_CASE("protocol: flow digests that collide: every connection exact") {
  Rig rig(128);
  rig.k.cfg.digest_mask = 0x3; // four digests for everything
  std::vector<Conversation> convs;
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 10; i++) {
      if (round == 0)
        convs.emplace_back("10.0.0.1", uint16_t(3000 + i), "10.0.0.9", 53, 17);
      rig.k.send(convs[i].client(0, 100 + i, true));
      rig.k.send(convs[i].server(0, 300 + i, true));
    }
    rig.after(1 * sec);
  }
  CHECK(rig.k.counters[TCF_CTR_PROBES] > 0);
  rig.k.advance(61 * sec);
  rig.after(1 * sec);
  rig.after(1 * sec);
  for (auto &c : convs)
    check_record(rig.final_of(c), c);
  rig.check_deltas();
  rig.after(1 * sec);
  CHECK(rig.k.mapped() == 0);
}

TEST_CASE("protocol: a slot goes back only once its record is durable") {
  Rig rig;
  Conversation c("10.0.0.1", 40000, "10.0.0.2", 80);
  c.short_tcp(rig.k);
  rig.k.advance(6 * sec);
  auto sweep = [&] { return rig.tracker->sweep(rig.k.clock_ns, Checkpoint::all(), [](auto) {}); };
  sweep();               // sealed
  auto finals = sweep(); // final handed out, not durable
  CHECK(finals.finals == 1);
  int64_t free = rig.k.pool.free;
  sweep();
  sweep();
  CHECK(rig.k.pool.free == free); // held
  rig.tracker->durable(finals.seq);
  sweep();
  CHECK(rig.k.pool.free == free + 1);
}

TEST_CASE("protocol: a restarted agent on the same table: nothing twice, nothing lost") {
  Rig rig;
  Conversation open("10.0.0.1", 40000, "10.0.0.2", 443);
  for (Packet p : {open.client(SYN), open.server(SYN | ACK), open.client(ACK),
                   open.client(ACK | PSH, 500, true)})
    rig.k.send(p);
  Conversation ended("10.0.0.3", 41000, "10.0.0.2", 80);
  ended.short_tcp(rig.k);
  rig.after(1 * sec); // a checkpoint of both
  rig.after(6 * sec); // `ended` sealed
  rig.after(1 * sec); // its final handed out... and the agent is killed before the slot goes back
  REQUIRE(rig.finals_of(ended).size() == 1);
  auto checkpoint = rig.updates;
  // What the database holds: the open connection as last written.
  tcf_flow_key open_key = open.key;
  canonicalise(open_key);
  ConnRecord last;
  for (const auto &u : rig.updates)
    if (u.record.key == open_key)
      last = u.record;
  REQUIRE(!last.final());
  StoredOpenConn stored{last.uid,       last.orig_pkts,  last.orig_bytes,
                        last.resp_pkts, last.resp_bytes, last.end_ns};
  Uid ended_uid = rig.finals_of(ended)[0].uid;

  rig.k.send(open.server(ACK | PSH, 700, true)); // while no agent runs
  rig.tracker = std::make_unique<Tracker>(Rig::default_config(), rig.table);
  rig.tracker->resume({stored});
  rig.tracker->set_already_final([&](const Uid &uid) { return uid == ended_uid; });
  rig.after(1 * sec);
  rig.after(1 * sec);
  CHECK(rig.finals_of(ended).size() == 1); // not again
  CHECK(rig.tracker->take_unresumed().empty());
  close(rig.k, open);
  rig.after(6 * sec);
  rig.after(1 * sec);
  check_record(rig.final_of(open), open);
  rig.check_deltas(); // the deltas of both agents add up to the final
}

TEST_CASE("protocol: a connection written open that ended while no agent ran: resumed, not stale") {
  Rig rig;
  Conversation c("10.0.0.1", 40000, "10.0.0.2", 443);
  for (Packet p :
       {c.client(SYN), c.server(SYN | ACK), c.client(ACK), c.client(ACK | PSH, 500, true)})
    rig.k.send(p);
  rig.after(1 * sec); // a checkpoint; then the agent is killed
  ConnRecord last = rig.updates.back().record;
  REQUIRE(!last.final());
  StoredOpenConn stored{last.uid,       last.orig_pkts,  last.orig_bytes,
                        last.resp_pkts, last.resp_bytes, last.end_ns};

  rig.k.send(c.server(ACK | PSH, 700, true)); // while no agent runs
  close(rig.k, c);
  rig.k.advance(6 * sec);
  rig.tracker = std::make_unique<Tracker>(Rig::default_config(), rig.table);
  rig.tracker->resume({stored});
  rig.after(1 * sec); // its first sweep finds the slot over: ending, no update yet
  CHECK(rig.tracker->take_unresumed().empty());
  rig.after(1 * sec);
  check_record(rig.final_of(c), c);
  rig.check_deltas(); // the first agent's checkpoint and the final's delta add up
}

TEST_CASE("protocol: records follow the wall clock when it steps, not the noise of measuring it") {
  // NTP stepped the wall clock by 2 ms between the two connections' sweeps;
  // before the first, a measurement 50 ns off changed nothing.
  int64_t offset = 1'700'000'000 * sec;
  TrackerConfig config = Rig::default_config();
  config.boot_to_epoch_ns = offset;
  Rig rig(64, config);
  Conversation a("10.0.0.1", 40000, "10.0.0.2", 80);
  uint64_t a_start = rig.k.clock_ns;
  a.short_tcp(rig.k);
  rig.tracker->follow_wall_clock(offset + 50);
  rig.after(6 * sec);
  rig.after(1 * sec);
  rig.tracker->follow_wall_clock(offset + 2'000'000);
  Conversation b("10.0.0.1", 40001, "10.0.0.2", 80);
  uint64_t b_start = rig.k.clock_ns;
  b.short_tcp(rig.k);
  rig.after(6 * sec);
  rig.after(1 * sec);
  CHECK(rig.final_of(a).start_ns == a_start + uint64_t(offset));
  CHECK(rig.final_of(b).start_ns == b_start + uint64_t(offset) + 2'000'000);
}

TEST_CASE("protocol: a connection ends at its last packet, also within the coarse tick") {
  // Three datagrams within one 4 ms tick: the end is the third's time.
  Rig rig;
  rig.k.advance(4 * ms - rig.k.clock_ns % (4 * ms)); // the start of a tick
  Conversation c("10.0.0.1", 40000, "10.0.0.2", 53, 17);
  uint64_t start = rig.k.clock_ns;
  rig.k.send(c.client(0, 60, true));
  rig.k.advance(1 * ms);
  rig.k.send(c.server(0, 120, true));
  rig.k.advance(2 * ms);
  rig.k.send(c.client(0, 60, true));
  REQUIRE(rig.k.clock_ns / (4 * ms) == start / (4 * ms));
  rig.after(61 * sec);
  rig.after(1 * sec);
  auto r = rig.final_of(c);
  CHECK(r.end_ns - r.start_ns == 3 * ms);
}

TEST_CASE("protocol: shutdown: open connections final as shutdown, closed ones as fin") {
  Rig rig;
  Conversation open("10.0.0.1", 40000, "10.0.0.2", 443);
  for (Packet p : {open.client(SYN), open.server(SYN | ACK), open.client(ACK)})
    rig.k.send(p);
  Conversation closed("10.0.0.1", 40001, "10.0.0.2", 443);
  closed.short_tcp(rig.k);
  rig.sweep();
  rig.k.send(open.client(ACK | PSH, 100, true));
  rig.tracker->shutdown(rig.k.clock_ns, [&](auto batch) {
    rig.updates.insert(rig.updates.end(), batch.begin(), batch.end());
  });
  auto o = rig.final_of(open), c = rig.final_of(closed);
  check_record(o, open);
  check_record(c, closed);
  CHECK(o.close_reason == CloseReason::shutdown);
  CHECK(c.close_reason == CloseReason::fin);
  rig.check_deltas();
}
