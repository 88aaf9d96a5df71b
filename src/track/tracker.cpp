// The connection tracker. A connection is a flow key plus the kernel's
// generation number on it (bumped when the TC program splits a reused or idle
// key), within one incarnation of the key's map entry (a new one starts when
// the agent deletes the entry). Values from the maps are authoritative;
// events only time the first occurrences for history and RTT.
//
// Per key: the current connection (the one in the flow map), plus "parked"
// connections the kernel has ended whose final value (ended map) has not been
// drained yet. Finalised connections wait in `finished_` for take_updates().
#include "track/tracker.h"

#include "track/zeek_state.h"
#include "util/clock.h"

#include <netinet/in.h>

#include <algorithm>
#include <optional>
#include <unordered_map>

namespace tcflows {
namespace {

// Events kept per connection: each (direction, bit) occurs first only once,
// so 16 suffice; the rest is slack for stray duplicates.
constexpr size_t max_events = 24;
// Sweeps a parked connection waits for its final value from the ended map.
constexpr uint64_t park_sweeps = 3;
// Consecutive sweeps a tracked key may be missing from the flow map.
constexpr uint32_t absent_sweeps = 2;

enum class End { open, over, shutdown };

struct Traffic {
  uint64_t pkts[2] = {0, 0};
  uint64_t bytes[2] = {0, 0};
  bool operator==(const Traffic &) const = default;
};

Traffic counters_of(const tcf_flow_val &val) {
  return {{val.pkts[0], val.pkts[1]}, {val.bytes[0], val.bytes[1]}};
}

void add(Traffic &to, const Traffic &c) {
  for (int d = 0; d < 2; d++) {
    to.pkts[d] += c.pkts[d];
    to.bytes[d] += c.bytes[d];
  }
}

struct Conn {
  tcf_flow_key key{};
  uint32_t gen = 0;
  uint32_t incarnation = 0;
  bool has_value = false;
  tcf_flow_val val{};
  std::vector<SeenStep> events;
  std::optional<Orientation> orientation; // fixed by the first update
  bool announced = false;                 // an update of it was taken
  Traffic reported;                       // counters as of the last update
  uint64_t last_update_ns = 0;            // epoch time of the last update
  uint64_t parked_at = 0;                 // sweep number when parked
  End end = End::open;
};

struct Flow {
  std::optional<Conn> current;
  uint32_t incarnation = 0;
  uint32_t min_gen = 0;  // generations below have been finalised
  uint64_t floor_ns = 0; // events up to here belong to a deleted incarnation
  uint32_t parked = 0;   // parked connections of this key
  uint64_t seen_sweep = 0;
  uint32_t absent = 0;
  Traffic done; // finalised connections
};

// tcflows::operator== of flow keys, for std containers (ADL does not find it).
struct FlowKeyEq {
  bool operator()(const tcf_flow_key &a, const tcf_flow_key &b) const { return a == b; }
};

template <typename T> using KeyMap = std::unordered_map<tcf_flow_key, T, FlowKeyHash, FlowKeyEq>;

struct GenKey {
  tcf_flow_key key;
  uint32_t gen;
  bool operator==(const GenKey &o) const { return gen == o.gen && key == o.key; }
};

struct GenKeyHash {
  size_t operator()(const GenKey &k) const { return FlowKeyHash{}(k.key) * 31 + k.gen; }
};

uint32_t event_seen(const std::vector<SeenStep> &events) {
  uint32_t seen = 0;
  for (const auto &e : events)
    seen |= uint32_t(e.bits) << (8 * (e.dir & 1));
  return seen;
}

} // namespace

struct Tracker::Impl {
  explicit Impl(TrackerConfig c) : config_(std::move(c)) {}

  uint64_t finished_count() const { return finished_count_; }
  TrackerStats stats() const { return stats_; }

  Conn new_conn(const Flow &f, const tcf_flow_key &key, uint32_t gen) const {
    Conn c;
    c.key = key;
    c.gen = gen;
    c.incarnation = f.incarnation;
    return c;
  }

  // --- connection bookkeeping ---

  void apply_value(Conn &c, const tcf_flow_val &val) {
    c.val = val;
    if (!c.has_value) // events from before its first packet were another connection's
      std::erase_if(c.events, [&](const SeenStep &e) { return e.ts_ns < val.first_ns; });
    c.has_value = true;
  }

  void add_event(Conn &c, const tcf_event &ev) {
    if (c.has_value && ev.ts_ns < c.val.first_ns)
      return;
    if (c.events.size() >= max_events) {
      stats_.events_unmatched++;
      return;
    }
    c.events.push_back({ev.ts_ns, uint8_t(ev.dir & 1), ev.bits, true});
  }

  void finish(Flow &f, Conn &&c, End end) {
    if (!c.has_value) {
      stats_.events_unmatched += c.events.size();
      return;
    }
    c.end = end;
    add(f.done, counters_of(c.val));
    finished_.push_back(std::move(c));
    finished_count_++;
  }

  // Parks `c`: the kernel ended it and its final value comes later. A parked
  // connection of an earlier incarnation with the same generation gives way.
  Conn &park(Flow &f, Conn &&c) {
    c.parked_at = sweep_;
    auto [it, fresh] = parked_.try_emplace(GenKey{c.key, c.gen});
    if (fresh) {
      f.parked++;
    } else {
      if (it->second.has_value)
        stats_.finals_from_snapshot++;
      finish(f, std::move(it->second), End::over);
    }
    it->second = std::move(c);
    return it->second;
  }

  void park(Flow &f) {
    Conn c = std::move(*f.current);
    f.current.reset();
    park(f, std::move(c));
  }

  Conn *find_parked(const Flow &f, const tcf_flow_key &key, uint32_t gen) {
    auto it = parked_.find({key, gen});
    if (it == parked_.end() || it->second.incarnation != f.incarnation)
      return nullptr;
    return &it->second;
  }

  std::optional<Conn> take_parked(Flow &f, const tcf_flow_key &key, uint32_t gen) {
    auto it = parked_.find({key, gen});
    if (it == parked_.end())
      return std::nullopt;
    Conn c = std::move(it->second);
    parked_.erase(it);
    f.parked--;
    return c;
  }

  // The current connection can no longer be followed: final from what we have.
  void abandon(Flow &f) {
    if (!f.current)
      return;
    if (f.current->has_value)
      stats_.finals_from_snapshot++;
    finish(f, std::move(*f.current), End::over);
    f.current.reset();
  }

  // --- events ---

  // The connection an event of generation `gen` belongs to, created if new.
  Conn *route(Flow &f, const tcf_flow_key &key, uint32_t gen) {
    if (f.current && f.current->gen == gen)
      return &*f.current;
    if (Conn *c = find_parked(f, key, gen))
      return c;
    if (gen < f.min_gen)
      return nullptr;                      // already final
    if (f.current && f.current->gen > gen) // ended before a sweep saw it
      return &park(f, new_conn(f, key, gen));
    if (f.current)
      park(f); // a newer generation: the kernel split the key
    f.current = new_conn(f, key, gen);
    return &*f.current;
  }

  void on_event(const tcf_event &ev) {
    Flow &f = flows_[ev.key];
    if (ev.ts_ns <= f.floor_ns) {
      stats_.events_unmatched++;
      return;
    }
    // TCF_EV_ENDED tells nothing the ended map and the next events do not.
    if (ev.type != TCF_EV_NEW_FLOW && ev.type != TCF_EV_SEEN)
      return;
    if (Conn *c = route(f, ev.key, ev.gen))
      add_event(*c, ev);
    else
      stats_.events_unmatched++;
  }

  // --- final values ---

  void on_ended(const tcf_ended_key &ek, const tcf_flow_val &val) {
    Flow &f = flows_[ek.flow];
    std::optional<Conn> c = take_parked(f, ek.flow, ek.gen);
    // An ended entry older than the last deleted incarnation is not ours to split.
    bool older = f.floor_ns && val.last_ns <= f.floor_ns;
    if (!c && !older && f.current && f.current->gen == ek.gen) {
      c = std::move(*f.current);
      f.current.reset();
    }
    if (!c) {
      if (!older && f.current && f.current->gen < ek.gen)
        park(f); // it ended too; its own final is on the way
      c = new_conn(f, ek.flow, ek.gen);
    }
    apply_value(*c, val);
    finish(f, std::move(*c), End::over);
    if (!older)
      f.min_gen = std::max(f.min_gen, ek.gen + 1);
  }

  void on_removed(const tcf_flow_key &key, const tcf_flow_val &val) {
    Flow &f = flows_[key];
    std::optional<Conn> c;
    if (f.current && f.current->gen == val.gen) {
      c = std::move(*f.current);
      f.current.reset();
    } else if (f.current && f.current->gen < val.gen) {
      park(f); // split between the snapshot and the delete
    } else {
      abandon(f);
    }
    if (!c)
      c = new_conn(f, key, val.gen);
    apply_value(*c, val);
    finish(f, std::move(*c), End::over);
    // The next entry on this key is a new incarnation, from generation 0.
    f.incarnation++;
    f.min_gen = 0;
    f.floor_ns = std::max<uint64_t>(f.floor_ns, val.last_ns);
  }

  // --- sweeps ---

  // Brings the key's connections up to date with its flow-map value; returns
  // the current connection when the value is its own.
  Conn *reconcile(Flow &f, const tcf_flow_key &key, const tcf_flow_val &val) {
    if (f.current && f.current->gen == val.gen) {
      if (!f.current->has_value || f.current->val.first_ns == val.first_ns) {
        apply_value(*f.current, val);
        return &*f.current;
      }
      abandon(f); // the entry was replaced behind our back
      f.incarnation++;
      f.min_gen = 0;
    }
    if (Conn *c = find_parked(f, key, val.gen)) {
      apply_value(*c, val); // read before the split we already know of
      return nullptr;
    }
    if (val.gen < f.min_gen)
      return nullptr;                            // read before its final value was drained
    if (f.current && f.current->gen > val.gen) { // read before a split events told of
      apply_value(park(f, new_conn(f, key, val.gen)), val);
      return nullptr;
    }
    if (f.current) {
      // A torn read in the middle of a split shows the new generation with
      // the old connection's first packet time: wait for the next sweep.
      if (f.current->has_value && val.first_ns <= f.current->val.last_ns)
        return nullptr;
      park(f);
    }
    f.current = new_conn(f, key, val.gen);
    apply_value(*f.current, val);
    return &*f.current;
  }

  uint64_t idle_timeout(const tcf_flow_key &key) const {
    switch (key.proto) {
    case IPPROTO_TCP:
      return config_.tcp_idle.count();
    case IPPROTO_UDP:
    case IPPROTO_UDPLITE:
      return config_.udp_idle.count();
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6:
      return config_.icmp_idle.count();
    default:
      return config_.other_idle.count();
    }
  }

  // Closed and lingered, or idle past its timeout (0 = never).
  bool over(const Conn &c, uint64_t now) const {
    if (now <= c.val.last_ns)
      return false;
    uint64_t quiet = now - c.val.last_ns;
    if (seen_closed(c.val.seen) && quiet > uint64_t(config_.linger.count()))
      return true;
    uint64_t idle = idle_timeout(c.key);
    return idle && quiet > idle;
  }

  std::vector<tcf_flow_key> on_flows(const std::vector<FlowEntry> &entries, uint64_t now) {
    sweep_++;
    std::vector<tcf_flow_key> done;
    for (const auto &e : entries) {
      Flow &f = flows_[e.key];
      f.seen_sweep = sweep_;
      f.absent = 0;
      if (Conn *c = reconcile(f, e.key, e.val); c && over(*c, now))
        done.push_back(e.key);
    }
    sweep_absent();
    age_parked();
    return done;
  }

  void sweep_absent() {
    for (auto it = flows_.begin(); it != flows_.end();) {
      Flow &f = it->second;
      if (f.seen_sweep != sweep_ && ++f.absent >= absent_sweeps)
        abandon(f);
      if (f.seen_sweep != sweep_ && !f.current && !f.parked) {
        retire(it->first, f.done);
        it = flows_.erase(it);
      } else
        ++it;
    }
  }

  // Totals of a key that left the map stay for the live table, within a
  // bound: past it, the smallest quarter is dropped (and counted).
  void retire(const tcf_flow_key &key, const Traffic &done) {
    if (done == Traffic{})
      return;
    add(retired_[key], done);
    if (retired_.size() <= config_.max_retired)
      return;
    std::vector<std::pair<uint64_t, tcf_flow_key>> by_bytes;
    for (const auto &[k, t] : retired_)
      by_bytes.push_back({t.bytes[0] + t.bytes[1], k});
    auto cut = by_bytes.begin() + by_bytes.size() / 4;
    std::nth_element(by_bytes.begin(), cut, by_bytes.end(),
                     [](const auto &a, const auto &b) { return a.first < b.first; });
    for (auto i = by_bytes.begin(); i != cut; ++i)
      retired_.erase(i->second);
    stats_.totals_dropped += cut - by_bytes.begin();
  }

  void age_parked() {
    for (auto it = parked_.begin(); it != parked_.end();) {
      if (sweep_ - it->second.parked_at < park_sweeps) {
        ++it;
        continue;
      }
      Conn c = std::move(it->second);
      it = parked_.erase(it);
      Flow &f = flows_[c.key];
      f.parked--;
      if (c.has_value)
        stats_.finals_from_snapshot++;
      finish(f, std::move(c), End::over);
    }
  }

  // --- records ---

  Orientation orientation_of(const Conn &c) const {
    if (c.orientation)
      return *c.orientation;
    return decide_orientation(c.key, c.val, c.val.seen | event_seen(c.events), c.events);
  }

  ConnRecord record_of(const Conn &c, const Orientation &o) const {
    ConnRecord r;
    int orig = o.orig, resp = 1 - o.orig;
    r.uid = conn_uid(c.key, c.val.first_ns, c.gen, config_.uid_salt);
    r.key = c.key;
    r.orig = uint8_t(orig);
    // Packets of one direction pass one hook: the first packet's tells which.
    r.orig_ingress = (c.val.first_dir == orig) == (c.val.first_hook == TCF_HOOK_INGRESS);
    Ports ports = zeek_ports(c.key, c.val, orig);
    r.src_port = ports.src;
    r.dst_port = ports.dst;
    r.start_ns = boot_to_epoch(c.val.first_ns, config_.boot_to_epoch_ns);
    r.end_ns = boot_to_epoch(c.val.last_ns, config_.boot_to_epoch_ns);
    r.orig_pkts = c.val.pkts[orig];
    r.orig_bytes = c.val.bytes[orig];
    r.resp_pkts = c.val.pkts[resp];
    r.resp_bytes = c.val.bytes[resp];
    r.orig_tcp_flags = uint8_t(c.val.tcp_flags >> (8 * orig));
    r.resp_tcp_flags = uint8_t(c.val.tcp_flags >> (8 * resp));
    ZeekView view = zeek_view(c.key, c.val.seen | event_seen(c.events), c.events, o);
    r.state = view.state;
    r.history = view.history;
    r.rtt_ns = view.rtt_ns;
    r.orig_guessed = o.guessed;
    if (c.end != End::open)
      r.close_reason = view.closed_by
                           ? *view.closed_by
                           : (c.end == End::shutdown ? CloseReason::shutdown : CloseReason::idle);
    return r;
  }

  bool wants_update(const Conn &c) const {
    if (!c.has_value || c.val.pkts[0] + c.val.pkts[1] == 0)
      return false;
    return !c.announced || counters_of(c.val) != c.reported;
  }

  // Counter `now` minus what was reported; a regression is held at zero.
  uint64_t since(uint64_t now, uint64_t &reported) {
    if (now < reported) {
      stats_.counter_regressions++;
      return 0;
    }
    uint64_t d = now - reported;
    reported = now;
    return d;
  }

  // An earlier agent wrote this connection up to these counters.
  void take_up(Conn &c, const Uid &uid, int orig) {
    auto it = resumed_.find(uid);
    if (it == resumed_.end())
      return;
    const StoredOpenConn &stored = it->second;
    c.reported.pkts[orig] = stored.orig_pkts;
    c.reported.bytes[orig] = stored.orig_bytes;
    c.reported.pkts[1 - orig] = stored.resp_pkts;
    c.reported.bytes[1 - orig] = stored.resp_bytes;
    c.announced = true;
    c.last_update_ns = stored.checkpoint_ns;
    resumed_.erase(it);
  }

  ConnUpdate update_of(Conn &c, uint64_t now_epoch) {
    if (!c.orientation)
      c.orientation = orientation_of(c);
    int orig = c.orientation->orig, resp = 1 - orig;
    ConnUpdate u;
    u.record = record_of(c, *c.orientation);
    if (!c.announced && !resumed_.empty())
      take_up(c, u.record.uid, orig);
    u.delta.from_ns = c.announced ? c.last_update_ns : u.record.start_ns;
    u.delta.to_ns = std::max(now_epoch, u.delta.from_ns);
    Traffic now = counters_of(c.val);
    u.delta.orig_pkts = since(now.pkts[orig], c.reported.pkts[orig]);
    u.delta.orig_bytes = since(now.bytes[orig], c.reported.bytes[orig]);
    u.delta.resp_pkts = since(now.pkts[resp], c.reported.pkts[resp]);
    u.delta.resp_bytes = since(now.bytes[resp], c.reported.bytes[resp]);
    c.announced = true;
    c.last_update_ns = u.delta.to_ns;
    return u;
  }

  void resume(std::vector<StoredOpenConn> conns) {
    for (auto &conn : conns)
      resumed_.emplace(conn.uid, conn);
  }

  std::vector<Uid> take_unresumed() {
    if (!updates_taken_)
      return {};
    std::vector<Uid> uids;
    for (auto &[uid, conn] : resumed_)
      uids.push_back(uid);
    resumed_.clear();
    return uids;
  }

  size_t count_updates() const {
    size_t n = finished_.size();
    for (const auto &[key, f] : flows_)
      n += f.current && wants_update(*f.current);
    for (const auto &[gk, c] : parked_)
      n += wants_update(c);
    return n;
  }

  std::vector<ConnUpdate> take_updates(uint64_t now) {
    updates_taken_ = true;
    uint64_t now_epoch = boot_to_epoch(now, config_.boot_to_epoch_ns);
    std::vector<ConnUpdate> out;
    out.reserve(count_updates()); // no growth: a batch can hold every connection
    for (auto &c : finished_)
      out.push_back(update_of(c, now_epoch));
    finished_.clear();
    for (auto &[key, f] : flows_)
      if (f.current && wants_update(*f.current))
        out.push_back(update_of(*f.current, now_epoch));
    for (auto &[gk, c] : parked_)
      if (wants_update(c))
        out.push_back(update_of(c, now_epoch));
    return out;
  }

  std::vector<ConnUpdate> shutdown(uint64_t now) {
    for (auto &[key, f] : flows_) {
      if (f.current)
        finish(f, std::move(*f.current), End::shutdown);
      f.current.reset();
    }
    for (auto &[gk, c] : parked_) {
      if (c.has_value)
        stats_.finals_from_snapshot++;
      finish(flows_[gk.key], std::move(c), End::over);
    }
    parked_.clear();
    auto out = take_updates(now);
    flows_.clear();
    return out;
  }

  std::vector<FlowTotals> flow_totals() const {
    KeyMap<Traffic> sums;
    for (const auto &[key, f] : flows_) {
      Traffic &sum = sums[key];
      add(sum, f.done);
      if (f.current && f.current->has_value)
        add(sum, counters_of(f.current->val));
    }
    for (const auto &[gk, c] : parked_)
      if (c.has_value)
        add(sums[gk.key], counters_of(c.val));
    for (const auto &[key, done] : retired_)
      add(sums[key], done);
    std::vector<FlowTotals> out;
    for (const auto &[key, sum] : sums) {
      if (sum == Traffic{})
        continue;
      out.push_back({key, {sum.pkts[0], sum.pkts[1]}, {sum.bytes[0], sum.bytes[1]}});
    }
    return out;
  }

  size_t open_count() const {
    size_t n = 0;
    for (const auto &[key, f] : flows_)
      n += f.current && f.current->has_value;
    return n;
  }

  std::vector<ConnRecord> open_connections() const {
    std::vector<ConnRecord> out;
    for (const auto &[key, f] : flows_)
      if (f.current && f.current->has_value)
        out.push_back(record_of(*f.current, orientation_of(*f.current)));
    return out;
  }

private:
  TrackerConfig config_;
  KeyMap<Flow> flows_;
  KeyMap<Traffic> retired_; // totals of keys no longer in the map
  std::unordered_map<Uid, StoredOpenConn, UidHash> resumed_;
  bool updates_taken_ = false;
  std::unordered_map<GenKey, Conn, GenKeyHash> parked_;
  std::vector<Conn> finished_;
  uint64_t sweep_ = 0;
  uint64_t finished_count_ = 0;
  TrackerStats stats_;
};

Tracker::Tracker(TrackerConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Tracker::~Tracker() = default;

void Tracker::on_event(const tcf_event &event) { impl_->on_event(event); }

void Tracker::on_ended(const tcf_ended_key &key, const tcf_flow_val &final_val) {
  impl_->on_ended(key, final_val);
}

std::vector<tcf_flow_key> Tracker::on_flows(const std::vector<FlowEntry> &flows,
                                            uint64_t now_boot_ns) {
  return impl_->on_flows(flows, now_boot_ns);
}

void Tracker::on_removed(const tcf_flow_key &key, const tcf_flow_val &final_val,
                         uint64_t /*now_boot_ns*/) {
  impl_->on_removed(key, final_val);
}

std::vector<ConnUpdate> Tracker::take_updates(uint64_t now_boot_ns) {
  return impl_->take_updates(now_boot_ns);
}

std::vector<ConnUpdate> Tracker::shutdown(uint64_t now_boot_ns) {
  return impl_->shutdown(now_boot_ns);
}

std::vector<FlowTotals> Tracker::flow_totals() const { return impl_->flow_totals(); }
size_t Tracker::open_count() const { return impl_->open_count(); }
void Tracker::resume(std::vector<StoredOpenConn> conns) { impl_->resume(std::move(conns)); }
std::vector<Uid> Tracker::take_unresumed() { return impl_->take_unresumed(); }

std::vector<ConnRecord> Tracker::open_connections() const { return impl_->open_connections(); }

uint64_t Tracker::connections_finished() const { return impl_->finished_count(); }

TrackerStats Tracker::stats() const { return impl_->stats(); }

} // namespace tcflows
