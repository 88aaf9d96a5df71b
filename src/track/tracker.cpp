// The connection tracker. Each slot of the table is one connection; the
// tracker keeps, per slot, what the program does not: the originator once
// decided, the counters last reported (for deltas), and where the slot is in
// its life from the agent's side:
//
//   open    seen ACTIVE; sealed here when over
//   ending  seen ENDED or SEALED: the next sweep, after a grace period,
//           takes its final counters
//   done    final record handed out; the slot goes back to the program once
//           that record is durable
//
// A sweep starts with the grace period (ConnTable::synchronize) when the
// previous sweep left slots ending, so a single pass reads finals, seals,
// and reports.
//
// Orphans: pruning the index can race with a packet that is filling an
// entry past the pruned one, leaving a slot that the program's lookup no
// longer finds. Each sweep checks that the index reaches every ACTIVE slot;
// one that it did not reach at two sweeps with a grace period between is an
// orphan, joined to the slot that continues its connection (or recorded
// alone when none does). Updates of an unreached slot wait for that check, so
// a uid is never announced twice.
#include "track/tracker.h"

#include "kernel/index.h"

extern "C" {
#include "key.h"
}

#include "track/community_id.h"
#include "track/flow.h"
#include "track/zeek_state.h"
#include "util/clock.h"

#include <netinet/in.h>

#include <algorithm>
#include <optional>
#include <queue>
#include <unordered_map>
#include <unordered_set>

namespace tcflows {
namespace {

enum class Phase : uint8_t { none, open, ending, done };

constexpr uint8_t undecided = 2;

// What the agent keeps per slot (about 56 bytes).
struct Tracked {
  uint32_t incarnation = 0;
  Phase phase = Phase::none;
  uint8_t orig = undecided;  // fixed by the first update, so that deltas add up
  bool announced = false;    // an update of it was handed out
  uint32_t unreached = 0;    // the sweep that first found the index not reaching it
  bool inherited = false;    // in the table before this agent's first sweep
  uint32_t final_seq = 0;    // done: the sweep that handed out its final
  uint64_t reported[4] = {}; // pkts[0], pkts[1], bytes[0], bytes[1] as last reported
  uint64_t last_update_ns = 0;
};

struct Traffic {
  uint64_t pkts[2] = {0, 0};
  uint64_t bytes[2] = {0, 0};
  bool operator==(const Traffic &) const = default;
};

void add(Traffic &to, const tcf_conn &c) {
  for (int d = 0; d < 2; d++) {
    to.pkts[d] += c.pkts[d];
    to.bytes[d] += c.bytes[d];
  }
}

// tcflows::operator== of flow keys, for std containers (ADL does not find it).
struct FlowKeyEq {
  bool operator()(const tcf_flow_key &a, const tcf_flow_key &b) const { return a == b; }
};
template <typename T> using KeyMap = std::unordered_map<tcf_flow_key, T, FlowKeyHash, FlowKeyEq>;

// A consistent enough copy of a slot: each field read once, atomically
// where the program writes it atomically.
tcf_conn snapshot(tcf_conn &slot) {
  tcf_conn c = slot;
  for (int d = 0; d < 2; d++) {
    c.pkts[d] = shared(slot.pkts[d]).load(std::memory_order_relaxed);
    c.bytes[d] = shared(slot.bytes[d]).load(std::memory_order_relaxed);
  }
  c.marks = shared(slot.marks).load(std::memory_order_relaxed);
  c.order = shared(slot.order).load(std::memory_order_relaxed);
  return c;
}

uint64_t packets(const tcf_conn &c) { return c.pkts[0] + c.pkts[1]; }

// The TCP health of key side `side` over the slots of one connection.
TcpHealth tcp_health(std::initializer_list<const tcf_conn *> slots, int side) {
  TcpHealth h;
  uint64_t sum = 0;
  for (const tcf_conn *c : slots) {
    if (!c)
      continue;
    const tcf_tcp_dir &t = c->tcp[side];
    h.retx_pkts += t.retx_pkts;
    h.retx_bytes += t.retx_bytes;
    h.ooo_pkts += t.ooo_pkts;
    h.zero_windows += t.zero_win;
    if (!t.rtt_n)
      continue;
    h.rtt_min_ns = h.rtt_samples ? std::min<uint64_t>(h.rtt_min_ns, t.rtt_min_ns) : t.rtt_min_ns;
    h.rtt_max_ns = std::max<uint64_t>(h.rtt_max_ns, t.rtt_max_ns);
    h.rtt_samples += t.rtt_n;
    sum += t.rtt_sum_ns;
  }
  h.rtt_mean_ns = h.rtt_samples ? sum / h.rtt_samples : 0;
  return h;
}

// The health letters of a connection; those of two slots go at the end.
HealthLetters conn_health_letters(const tcf_conn &last, const tcf_conn *carry) {
  HealthLetters h = health_letters(last);
  if (!carry)
    return h;
  HealthLetters earlier = health_letters(*carry);
  for (int l = 0; l < 2; l++)
    for (int d = 0; d < 2; d++)
      h.count[l][d] += earlier.count[l][d];
  h.ranked = false;
  return h;
}
uint8_t first_dir(const tcf_conn &c) { return c.first & TCF_FIRST_DIR; }

// An open connection the live table may show.
struct Candidate {
  uint64_t bytes;
  tcf_conn conn;
  bool operator>(const Candidate &o) const { return bytes > o.bytes; }
};

} // namespace

struct Tracker::Impl {
  Impl(TrackerConfig config, ConnTable &table) : config_(std::move(config)), table_(table) {
    shared(table_.pool().bell_armed).store(1);
  }

  // --- time and classes ---

  uint64_t idle_timeout(const tcf_flow_key &key) const {
    return config_.idle[tcf_idle_class(key.proto)].count();
  }

  uint64_t epoch(uint64_t boot_ns) const {
    return boot_to_epoch(boot_ns, config_.boot_to_epoch_ns);
  }

  // Why an open connection is over at `now`: closed and lingered, or idle
  // past its timeout (0 = never); TCF_END_NONE while it is not.
  uint32_t over(const tcf_conn &c, uint64_t now) const {
    uint64_t last = c.last_ns;
    if (now <= last)
      return TCF_END_NONE;
    uint64_t quiet = now - last, idle = idle_timeout(c.key);
    if (seen_closed(c.marks & 0xffff) && quiet > uint64_t(config_.linger.count()))
      return TCF_END_CLOSED;
    return idle && quiet > idle ? TCF_END_IDLE : TCF_END_NONE;
  }

  // --- records ---

  // The connection of slot `c`, whose first packets may be in `carry`.
  struct View {
    const tcf_conn &first; // the slot of the first packet
    const tcf_conn &last;  // the slot of the latest
    const tcf_conn *carry;
    Steps steps;
    Traffic traffic;
  };

  View view_of(const tcf_conn &c, const tcf_conn *carry) const {
    View v{carry ? *carry : c, c, carry, conn_steps(c.marks, c.order), {}};
    if (carry)
      v.steps = join_steps(conn_steps(carry->marks, carry->order), v.steps);
    add(v.traffic, c);
    if (carry)
      add(v.traffic, *carry);
    return v;
  }

  Orientation orientation_of(const View &v) const {
    return decide_orientation(v.first.key, first_dir(v.first), v.first.icmp_type, v.steps);
  }

  ConnRecord record_of(const View &v, const Orientation &o, CloseReason reason) const {
    ConnRecord r;
    const tcf_flow_key &key = v.first.key;
    int orig = o.orig, resp = 1 - o.orig;
    r.uid = conn_uid(key, v.first.first_ns, config_.uid_salt);
    r.key = key;
    r.orig = uint8_t(orig);
    // Packets of one direction pass one hook: the first packet's tells which.
    bool egress = v.first.first & TCF_FIRST_EGRESS;
    r.orig_ingress = (first_dir(v.first) == orig) == !egress;
    Ports ports = zeek_ports(key, v.first.icmp_type, v.first.icmp_code, orig);
    r.src_port = ports.src;
    r.dst_port = ports.dst;
    r.start_ns = epoch(v.first.first_ns);
    r.end_ns = epoch(packets(v.last) ? v.last.last_ns : v.first.last_ns);
    r.orig_pkts = v.traffic.pkts[orig];
    r.orig_bytes = v.traffic.bytes[orig];
    r.resp_pkts = v.traffic.pkts[resp];
    r.resp_bytes = v.traffic.bytes[resp];
    uint32_t flags = (v.last.marks >> 16) | (v.carry ? v.carry->marks >> 16 : 0);
    r.orig_tcp_flags = uint8_t(flags >> (8 * orig));
    r.resp_tcp_flags = uint8_t(flags >> (8 * resp));
    ZeekView zeek = zeek_view(key, v.steps, o, conn_health_letters(v.last, v.carry));
    r.state = zeek.state;
    r.history = zeek.history;
    r.rtt_ns = handshake_rtt(v.steps, orig, v.first.ack_dt);
    r.orig_guessed = o.guessed;
    r.close_reason = reason;
    r.community_id = community_id(r, config_.community_id_seed);
    if (is_tcp(key)) {
      r.orig_tcp = tcp_health({&v.last, v.carry}, orig);
      r.resp_tcp = tcp_health({&v.last, v.carry}, resp);
    }
    return r;
  }

  // The update of slot `i` now, its delta counting from what was reported.
  ConnUpdate update_of(Tracked &t, const View &v, CloseReason reason, uint64_t now_epoch) {
    Orientation o = orientation_of(v);
    if (t.orig == undecided)
      t.orig = uint8_t(o.orig);
    o.orig = t.orig;
    ConnUpdate u;
    u.record = record_of(v, o, reason);
    if (!t.announced && !resumed_.empty())
      take_up(t, u.record.uid);
    u.delta.from_ns = t.announced ? t.last_update_ns : u.record.start_ns;
    u.delta.to_ns = std::max(now_epoch, u.delta.from_ns);
    int orig = t.orig, resp = 1 - orig;
    uint64_t now[4] = {v.traffic.pkts[0], v.traffic.pkts[1], v.traffic.bytes[0],
                       v.traffic.bytes[1]};
    uint64_t delta[4];
    for (int i = 0; i < 4; i++) {
      delta[i] = now[i] >= t.reported[i] ? now[i] - t.reported[i] : 0;
      t.reported[i] = now[i];
    }
    u.delta.orig_pkts = delta[orig];
    u.delta.resp_pkts = delta[resp];
    u.delta.orig_bytes = delta[2 + orig];
    u.delta.resp_bytes = delta[2 + resp];
    t.announced = true;
    t.last_update_ns = u.delta.to_ns;
    return u;
  }

  bool changed(const Tracked &t, const View &v) const {
    if (!t.announced)
      return true;
    return t.reported[0] != v.traffic.pkts[0] || t.reported[1] != v.traffic.pkts[1] ||
           t.reported[2] != v.traffic.bytes[0] || t.reported[3] != v.traffic.bytes[1];
  }

  // An earlier agent wrote this connection up to these counters.
  void take_up(Tracked &t, const Uid &uid) {
    auto it = resumed_.find(uid);
    if (it == resumed_.end())
      return;
    const StoredOpenConn &stored = it->second;
    int orig = t.orig, resp = 1 - orig;
    t.reported[orig] = stored.orig_pkts;
    t.reported[resp] = stored.resp_pkts;
    t.reported[2 + orig] = stored.orig_bytes;
    t.reported[2 + resp] = stored.resp_bytes;
    t.announced = true;
    t.last_update_ns = stored.checkpoint_ns;
    resumed_.erase(it);
  }

  // --- handing out ---

  void emit(ConnUpdate &&update, const UpdateSink &sink) {
    chunk_.push_back(std::move(update));
    if (chunk_.size() >= config_.chunk)
      flush(sink);
  }

  void flush(const UpdateSink &sink) {
    if (!chunk_.empty())
      sink(chunk_);
    chunk_.clear();
  }

  // --- the life of a slot ---

  // fin or rst when the TCP connection closed; else it ended idle (or was
  // followed by a new one on its key, which Zeek calls the same).
  CloseReason close_reason(const View &v) const {
    if (is_tcp(v.first.key))
      if (auto closed = closed_by(v.steps))
        return *closed;
    return CloseReason::idle;
  }

  // The final record of an ended slot; its mapping goes when the agent sealed it.
  void finish(uint32_t i, tcf_conn &slot, Tracked &t, const UpdateSink &sink) {
    tcf_conn c = snapshot(slot);
    auto carry = carries_.find(i);
    View v = view_of(c, carry != carries_.end() ? &carry->second : nullptr);
    bool skip = already_final_ && t.inherited && !t.announced &&
                already_final_(conn_uid(v.first.key, v.first.first_ns, config_.uid_salt));
    if (packets(c) + (v.carry ? packets(*v.carry) : 0) > 0 && !skip) {
      emit(update_of(t, v, close_reason(v), now_epoch_), sink);
      retire(c.key, v.traffic);
      stats_.finished++;
      finals_++;
    }
    if (carry != carries_.end())
      carries_.erase(carry);
    tombstones_ += index().remove(c.key, i); // none once a packet started the next one
    t.phase = Phase::done;
    t.final_seq = uint32_t(seq_);
  }

  // Whether slot `index` holds `key` (another slot than the one at hand).
  bool holds(uint32_t index, const tcf_flow_key &key) {
    bool same = false;
    table_.with_slot(index, [&](tcf_conn &c) { same = c.key == key; });
    return same;
  }

  IndexView index() { return IndexView(table_.index(), table_.digest_mask()); }

  bool reached(uint32_t i, const tcf_conn &c) {
    return index().reaches(c.key, i, [&](uint32_t other) { return holds(other, c.key); });
  }

  // An ACTIVE slot the index has not reached since before the last grace
  // period: no program can count into it any more. Its connection goes on in
  // the slot the index reaches for its key, or ended with it.
  void orphan(uint32_t i, tcf_conn &slot, Tracked &t, const UpdateSink &sink) {
    shared(slot.state).store((slot.state & ~0xffu) | TCF_SLOT_ENDED);
    tcf_conn c = snapshot(slot);
    auto next = index().find(c.key, [&](uint32_t other) { return holds(other, c.key); });
    if (next && *next < tracked_.size() && continues(c, *next)) {
      carries_[*next] = c;
      tombstones_ += index().remove(c.key, i);
      stats_.orphans_joined++;
      t.phase = Phase::done;
      t.final_seq = uint32_t(seq_);
      return;
    }
    stats_.orphans_alone++;
    finish(i, slot, t, sink);
  }

  // Whether slot `next` continues the connection in `c`, as the program would
  // have counted its first packet had `c` stayed mapped.
  bool continues(const tcf_conn &c, uint32_t next) {
    std::optional<tcf_conn> n;
    table_.with_slot(next, [&](tcf_conn &slot) { n = snapshot(slot); });
    if (!n || !(n->key == c.key))
      return false;
    uint64_t idle = idle_timeout(c.key);
    if (idle && n->first_ns > c.last_ns && n->first_ns - c.last_ns > idle)
      return false;
    Steps steps = conn_steps(n->marks, n->order);
    bool syn = steps.size() && (steps[0].bits & TCF_SEEN_SYN);
    return !(is_tcp(c.key) && syn && seen_closed(c.marks & 0xffff));
  }

  // --- the sweep ---

  void visit(uint32_t i, tcf_conn &slot, Checkpoint checkpoint, const UpdateSink &sink) {
    Tracked &t = tracked_[i];
    uint32_t state = shared(slot.state).load();
    uint32_t kind = slot_kind(state);
    if (t.phase == Phase::done) {
      if (t.final_seq <= durable_)
        free_slot(i, slot, t, state);
      return;
    }
    if (kind == TCF_SLOT_FREE) {
      t = Tracked{}; // taken and given back before it counted a packet
      return;
    }
    if (t.phase == Phase::none || t.incarnation != slot_incarnation(state)) {
      t = Tracked{slot_incarnation(state), Phase::open};
      t.inherited = adopting_;
      if (adopting_ && !resumed_.empty())
        note_resumed(slot);
    }
    if (t.phase == Phase::ending)
      return finish(i, slot, t, sink);
    if (kind == TCF_SLOT_ACTIVE) {
      if (!reached(i, slot)) {
        if (t.unreached && t.unreached < seq_ && synced_)
          return orphan(i, slot, t, sink);
        if (!t.unreached)
          t.unreached = uint32_t(seq_);
        unreached_++;
      } else {
        t.unreached = 0;
      }
      tcf_conn c = snapshot(slot);
      if (uint32_t end = over(c, now_)) {
        uint32_t sealed = (state & ~0xffu) | TCF_SLOT_SEALED | end << TCF_REASON_SHIFT;
        if (shared(slot.state).compare_exchange_strong(state, sealed))
          state = sealed;
        t.phase = Phase::ending; // sealed here, or ended by a packet meanwhile
        ending_++;
        return;
      }
      open_++;
      auto carry = carries_.find(i);
      View v = view_of(c, carry != carries_.end() ? &carry->second : nullptr);
      consider_for_live(c, v);
      if (config_.count_states && packets(c))
        stats_.open_by_state[size_t(zeek_view(c.key, v.steps, orientation_of(v)).state)]++;
      if (checkpoint.covers(i) && !t.unreached && packets(c) && changed(t, v))
        emit(update_of(t, v, CloseReason::open, now_epoch_), sink);
      return;
    }
    t.phase = Phase::ending; // ENDED by a packet, or SEALED by an earlier agent
    ending_++;
  }

  // Room for slots up to `end`: programs take new ones while a sweep runs.
  void fit(size_t end) {
    if (tracked_.size() < end)
      tracked_.resize(end);
  }

  void free_slot(uint32_t i, tcf_conn &slot, Tracked &t, uint32_t state) {
    uint32_t next = (slot_incarnation(state) + 1) << TCF_INCARNATION_SHIFT | TCF_SLOT_FREE;
    shared(slot.state).store(next);
    t = Tracked{};
    release_.push_back(i);
  }

  SweepResult sweep(uint64_t now, Checkpoint checkpoint, const UpdateSink &sink) {
    seq_++;
    stats_.sweeps++;
    now_ = now;
    now_epoch_ = epoch(now);
    synced_ = ending_ || unreached_;
    if (synced_)
      table_.synchronize();
    ending_ = open_ = finals_ = unreached_ = 0;
    stats_.open_by_state = {};
    live_ = {};
    table_.scan([&](uint32_t first, std::span<tcf_conn> slots) {
      fit(first + slots.size());
      for (uint32_t k = 0; k < slots.size(); k++)
        visit(first + k, slots[k], checkpoint, sink);
    });
    flush(sink);
    table_.release(release_);
    release_.clear();
    if (tombstones_) {
      index().prune();
      tombstones_ = 0;
    }
    adopting_ = false;
    updates_done_ = true;
    auto &pool = table_.pool();
    shared(pool.bell_armed).store(1);
    uint32_t unused = table_.capacity() - table_.used();
    return {seq_, finals_, open_, uint32_t(std::max<int64_t>(0, shared(pool.free).load())) + unused,
            table_.used()};
  }

  void shutdown(uint64_t now, const UpdateSink &sink, CloseReason open_reason) {
    table_.synchronize();
    seq_++;
    now_ = now;
    now_epoch_ = epoch(now);
    table_.scan([&](uint32_t first, std::span<tcf_conn> slots) {
      fit(first + slots.size());
      for (uint32_t k = 0; k < slots.size(); k++) {
        uint32_t i = first + k;
        Tracked &t = tracked_[i];
        uint32_t state = shared(slots[k].state).load();
        if (t.phase == Phase::done || slot_kind(state) == TCF_SLOT_FREE)
          continue;
        if (t.phase == Phase::none || t.incarnation != slot_incarnation(state))
          t = Tracked{slot_incarnation(state), Phase::open};
        if (slot_kind(state) == TCF_SLOT_ACTIVE)
          end_open(i, slots[k], t, open_reason, sink);
        else
          finish(i, slots[k], t, sink);
      }
    });
    flush(sink);
  }

  // An open connection at shutdown: final, `reason` unless it had closed.
  void end_open(uint32_t i, tcf_conn &slot, Tracked &t, CloseReason reason,
                const UpdateSink &sink) {
    tcf_conn c = snapshot(slot);
    auto carry = carries_.find(i);
    View v = view_of(c, carry != carries_.end() ? &carry->second : nullptr);
    if (!packets(c))
      return;
    std::optional<CloseReason> closed = is_tcp(c.key) ? closed_by(v.steps) : std::nullopt;
    emit(update_of(t, v, closed.value_or(reason), now_epoch_), sink);
    stats_.finished++;
    t.phase = Phase::done;
  }

  // --- live tables ---

  void consider_for_live(const tcf_conn &c, const View &v) {
    if (!config_.live_rows || !packets(c))
      return;
    uint64_t bytes = v.traffic.bytes[0] + v.traffic.bytes[1];
    if (live_.size() < config_.live_rows) {
      live_.push({bytes, c});
    } else if (bytes > live_.top().bytes) {
      live_.pop();
      live_.push({bytes, c});
    }
  }

  // Totals of finished connections per key, within a bound: past it, the
  // smallest quarter is dropped (and counted).
  void retire(const tcf_flow_key &key, const Traffic &traffic) {
    if (!config_.live_rows)
      return;
    Traffic &sum = retired_[key];
    for (int d = 0; d < 2; d++) {
      sum.pkts[d] += traffic.pkts[d];
      sum.bytes[d] += traffic.bytes[d];
    }
    if (retired_.size() <= config_.max_retired)
      return;
    std::vector<std::pair<uint64_t, tcf_flow_key>> by_bytes;
    for (const auto &[k, t] : retired_)
      by_bytes.push_back({t.bytes[0] + t.bytes[1], k});
    auto cut = by_bytes.begin() + by_bytes.size() / 4;
    std::nth_element(by_bytes.begin(), cut, by_bytes.end(),
                     [](const auto &a, const auto &b) { return a.first < b.first; });
    for (auto it = by_bytes.begin(); it != cut; ++it)
      retired_.erase(it->second);
    stats_.totals_dropped += cut - by_bytes.begin();
  }

  std::vector<ConnRecord> top_open(size_t n) const {
    auto heap = live_;
    std::vector<ConnRecord> out;
    while (!heap.empty()) {
      const tcf_conn &c = heap.top().conn;
      View v = view_of(c, nullptr);
      out.push_back(record_of(v, orientation_of(v), CloseReason::open));
      heap.pop();
    }
    std::reverse(out.begin(), out.end());
    if (out.size() > n)
      out.resize(n);
    return out;
  }

  std::vector<FlowTotals> flow_totals(size_t n) const {
    KeyMap<Traffic> sums = retired_;
    auto heap = live_;
    for (; !heap.empty(); heap.pop()) {
      Traffic &sum = sums[heap.top().conn.key];
      add(sum, heap.top().conn);
    }
    std::vector<FlowTotals> out;
    for (const auto &[key, s] : sums)
      out.push_back({key, {s.pkts[0], s.pkts[1]}, {s.bytes[0], s.bytes[1]}});
    auto bytes = [](const FlowTotals &f) { return f.bytes[0] + f.bytes[1]; };
    size_t keep = std::min(n, out.size());
    std::partial_sort(out.begin(), out.begin() + keep, out.end(),
                      [&](const auto &a, const auto &b) { return bytes(a) > bytes(b); });
    out.resize(keep);
    return out;
  }

  // --- resumption ---

  void resume(std::vector<StoredOpenConn> conns) {
    for (auto &conn : conns)
      resumed_.emplace(conn.uid, conn);
  }

  // A slot of the first sweep that an earlier agent wrote as open: its
  // stored counters wait for its first update (sweeps later if it ends).
  void note_resumed(const tcf_conn &slot) {
    auto it = resumed_.find(conn_uid(slot.key, slot.first_ns, config_.uid_salt));
    if (it != resumed_.end())
      in_slots_.insert(it->first);
  }

  std::vector<Uid> take_unresumed() {
    if (!updates_done_)
      return {};
    std::vector<Uid> uids;
    for (auto it = resumed_.begin(); it != resumed_.end();) {
      if (in_slots_.contains(it->first)) {
        ++it;
      } else {
        uids.push_back(it->first);
        it = resumed_.erase(it);
      }
    }
    in_slots_ = {};
    return uids;
  }

  TrackerConfig config_;
  ConnTable &table_;
  std::vector<Tracked> tracked_;                   // by slot
  std::unordered_map<uint32_t, tcf_conn> carries_; // slot -> the orphan it continues
  size_t tombstones_ = 0;                          // index entries removed since the last prune
  size_t unreached_ = 0;                           // ACTIVE slots the index did not reach
  bool synced_ = false;                            // this sweep began with a grace period
  std::vector<uint32_t> release_;
  std::vector<ConnUpdate> chunk_;
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> live_;
  KeyMap<Traffic> retired_;
  std::unordered_map<Uid, StoredOpenConn, UidHash> resumed_;
  std::unordered_set<Uid, UidHash> in_slots_; // of resumed_, those the first sweep found
  std::function<bool(const Uid &)> already_final_;
  bool adopting_ = true;
  bool updates_done_ = false;
  uint64_t seq_ = 0;
  uint64_t durable_ = 0;
  uint64_t now_ = 0;
  uint64_t now_epoch_ = 0;
  size_t ending_ = 0;
  size_t open_ = 0;
  size_t finals_ = 0;
  TrackerStats stats_;
};

Tracker::Tracker(TrackerConfig config, ConnTable &table)
    : impl_(std::make_unique<Impl>(std::move(config), table)) {}
Tracker::~Tracker() = default;

SweepResult Tracker::sweep(uint64_t now_boot_ns, Checkpoint checkpoint, const UpdateSink &sink) {
  return impl_->sweep(now_boot_ns, checkpoint, sink);
}

void Tracker::durable(uint64_t seq) { impl_->durable_ = std::max(impl_->durable_, seq); }

void Tracker::shutdown(uint64_t now_boot_ns, const UpdateSink &sink, CloseReason open_reason) {
  impl_->shutdown(now_boot_ns, sink, open_reason);
}

void Tracker::follow_wall_clock(int64_t boot_to_epoch_ns) {
  constexpr int64_t noise_ns = 100'000; // far above a measurement's jitter, far below 1 ms
  int64_t &offset = impl_->config_.boot_to_epoch_ns;
  if (boot_to_epoch_ns > offset + noise_ns || boot_to_epoch_ns < offset - noise_ns)
    offset = boot_to_epoch_ns;
}

void Tracker::resume(std::vector<StoredOpenConn> conns) { impl_->resume(std::move(conns)); }
std::vector<Uid> Tracker::take_unresumed() { return impl_->take_unresumed(); }
void Tracker::set_already_final(std::function<bool(const Uid &)> already_final) {
  impl_->already_final_ = std::move(already_final);
}

std::vector<ConnRecord> Tracker::top_open(size_t n) const { return impl_->top_open(n); }
std::vector<FlowTotals> Tracker::flow_totals(size_t n) const { return impl_->flow_totals(n); }
size_t Tracker::open_count() const { return impl_->open_; }
TrackerStats Tracker::stats() const { return impl_->stats_; }

} // namespace tcflows
