// Random and mutated frames (fuzz_frames.h) through bpf_prog_test_run_opts,
// one at a time, with the whole map state read after every frame. Each frame
// must do exactly one thing:
//  - malformed: the malformed counter and one reason counter move by one,
//    malformed_bytes by the frame length, and no flow changes;
//  - untracked: no slot was free, untracked_packets moves by the frame's
//    wire packets, and no flow changes;
//  - counted: one flow (its connections' slots) gains exactly the
//    frame's wire packets (gso_segs for a GSO frame) in one direction, with
//    bytes that fit the frame's IP length field, under a key whose every
//    address, port, VLAN id and protocol a reading of the frame's bytes gives
//    (fuzz_reading.h).
// Counters never decrease, slots never lose a connection, ended connections
// never change, each key has one ACTIVE slot and its mapping names it, and
// frames the generator built valid or broke on purpose do what
// it says (Must); frames whose IP or transport header is invalid by the
// standards are malformed, whatever made them. Each batch starts on emptied
// maps. TCF_FUZZ_SEED, TCF_FUZZ_FRAMES and TCF_FUZZ_FIRST_BATCH override the
// seed, the number of frames and the first batch; a failure prints them, the
// frame, what the generator did to it, and its hex.
#include "fuzz_frames.h"
#include "fuzz_reading.h"
#include "track/flow.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <linux/pkt_cls.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>

using namespace tcflows;
using namespace tcflows::test;

namespace {

constexpr uint64_t default_seed = 0x7cf1'0005;
constexpr uint64_t default_frames = 50'000;
constexpr uint64_t ms = 1'000'000;

uint64_t env_number(const char *name, uint64_t fallback) {
  const char *text = std::getenv(name);
  return text && *text ? std::strtoull(text, nullptr, 0) : fallback;
}

// Few slots (batches overflow them), short idle timeouts (the generator's
// clock jumps split connections).
constexpr uint32_t fuzz_slots = 48;

ProgramConfig fuzz_config() {
  ProgramConfig config = test_config(fuzz_slots);
  for (auto &idle : config.kernel.idle_ns)
    idle = 1 * ms;
  return config;
}

// ---------------------------------------------------------------- map state

using RawKey = std::array<uint8_t, sizeof(tcf_flow_key)>;

RawKey raw(const tcf_flow_key &key) {
  RawKey r;
  std::memcpy(r.data(), &key, sizeof(key));
  return r;
}

tcf_flow_key unraw(const RawKey &r) {
  tcf_flow_key key;
  std::memcpy(&key, r.data(), sizeof(key));
  return key;
}

struct State {
  Counters counters{};
  std::map<uint32_t, tcf_conn> slots; // every slot not FREE
};

State read_state(Harness &h) {
  State s{h.counters(), {}};
  h.table().scan([&](uint32_t first, std::span<tcf_conn> slots) {
    for (uint32_t i = 0; i < slots.size(); i++)
      if (slot_kind(slots[i].state) != TCF_SLOT_FREE)
        s.slots[first + i] = slots[i];
  });
  return s;
}

bool same_conn(const tcf_conn &a, const tcf_conn &b) { return std::memcmp(&a, &b, sizeof(a)) == 0; }

// Packets and bytes of a key's connections: all its slots.
struct Totals {
  std::array<uint64_t, 2> pkts{}, bytes{};
  bool operator==(const Totals &) const = default;
};

std::map<RawKey, Totals> totals(const State &s) {
  std::map<RawKey, Totals> out;
  for (const auto &[slot, c] : s.slots) {
    Totals &t = out[raw(c.key)];
    for (int d = 0; d < 2; d++)
      t.pkts[d] += c.pkts[d], t.bytes[d] += c.bytes[d];
  }
  return out;
}

// ---------------------------------------------------------------- checks

// A super-packet with gso_segs is that many packets; one with gso_size alone
// (made only of valid frames) as many as its payload fills segments.
uint32_t wire_packets(const FuzzFrame &f) {
  if (f.opts.gso_segs > 1)
    return f.opts.gso_segs;
  if (f.opts.gso_segs || !f.opts.gso_size)
    return 1;
  uint64_t payload = f.expected.bytes - f.expected.hdr_len, size = f.opts.gso_size;
  return payload <= size ? 1 : uint32_t((payload + size - 1) / size);
}

using Problems = std::vector<std::string>;

struct Outcome {
  bool malformed = false, untracked = false;
  int reason = -1; // the malformed reason counter that moved
  std::optional<tcf_flow_key> key;
  int dir = -1;
  uint64_t bytes = 0;
};

void check_counters(const Counters &a, const Counters &b, const FuzzFrame &f, Outcome &out,
                    Problems &bad) {
  auto delta = [&](int i) { return b[i] - a[i]; };
  for (int i = 0; i < TCF_CTR_MAX; i++)
    if (b[i] < a[i])
      bad.push_back(fmt::format("counter {} decreased", counter_name(i)));
  if (delta(TCF_CTR_FRAMES) != 1)
    bad.push_back(fmt::format("frames moved by {}", delta(TCF_CTR_FRAMES)));
  if (delta(TCF_CTR_GSO_FRAMES) != is_super_packet(f.opts))
    bad.push_back(fmt::format("gso_frames moved by {}", delta(TCF_CTR_GSO_FRAMES)));
  uint64_t reasons = 0;
  for (int i = TCF_CTR_MAL_L2; i <= TCF_CTR_MAL_L4; i++)
    if (delta(i))
      reasons += delta(i), out.reason = i;
  out.malformed = delta(TCF_CTR_MALFORMED) != 0;
  if (delta(TCF_CTR_MALFORMED) > 1 || reasons != delta(TCF_CTR_MALFORMED) ||
      delta(TCF_CTR_MALFORMED_BYTES) != (out.malformed ? f.data.size() : 0))
    bad.push_back(fmt::format("malformed {}, reasons {}, malformed_bytes {}",
                              delta(TCF_CTR_MALFORMED), reasons, delta(TCF_CTR_MALFORMED_BYTES)));
  out.untracked = delta(TCF_CTR_UNTRACKED_PKTS) != 0;
  uint64_t failed = delta(TCF_CTR_FLOW_FULL) + delta(TCF_CTR_FLOW_ERROR);
  if (failed != out.untracked ||
      (out.untracked && delta(TCF_CTR_UNTRACKED_PKTS) != wire_packets(f)))
    bad.push_back(fmt::format("untracked_packets {} with {} failed inserts",
                              delta(TCF_CTR_UNTRACKED_PKTS), failed));
}

// Slots keep their connections: a slot's key never changes, its counters
// never decrease, it leaves ACTIVE only for ENDED, and an ENDED one never
// changes again.
void check_slots(const State &a, const State &b, Problems &bad) {
  for (const auto &[slot, old] : a.slots) {
    auto it = b.slots.find(slot);
    std::string name = fmt::format("slot {} ({})", slot, describe(old.key));
    if (it == b.slots.end()) {
      bad.push_back("a connection vanished: " + name);
      continue;
    }
    const tcf_conn &now = it->second;
    if (slot_kind(old.state) == TCF_SLOT_ENDED && !same_conn(old, now))
      bad.push_back("an ended connection changed: " + name);
    if (!(now.key == old.key))
      bad.push_back("a slot changed its key: " + name);
    if (slot_kind(now.state) != TCF_SLOT_ACTIVE && slot_kind(now.state) != TCF_SLOT_ENDED)
      bad.push_back("a taken slot became neither active nor ended: " + name);
    for (int d = 0; d < 2; d++)
      if (now.pkts[d] < old.pkts[d] || now.bytes[d] < old.bytes[d])
        bad.push_back("a connection's counters decreased: " + name);
  }
}

// The one flow whose connections gained the frame's packets, if any.
void find_counted(const State &a, const State &b, const FuzzFrame &f, Outcome &out, Problems &bad) {
  auto before = totals(a), after = totals(b);
  for (const auto &[key, t] : after) {
    Totals old = before.count(key) ? before[key] : Totals{};
    if (t == old)
      continue;
    std::string name = describe(unraw(key));
    if (out.key) {
      bad.push_back("a second flow changed: " + name);
      continue;
    }
    out.key = unraw(key);
    for (int d = 0; d < 2; d++)
      if (t.pkts[d] != old.pkts[d] || t.bytes[d] != old.bytes[d])
        out.dir = out.dir < 0 ? d : 2;
    int d = out.dir == 2 ? 0 : out.dir;
    out.bytes = t.bytes[d] - old.bytes[d];
    if (out.dir == 2 || t.pkts[d] - old.pkts[d] != wire_packets(f))
      bad.push_back(fmt::format("{} gained {}/{} packets, {}/{} bytes; the frame is {} packets",
                                name, t.pkts[0] - old.pkts[0], t.pkts[1] - old.pkts[1],
                                t.bytes[0] - old.bytes[0], t.bytes[1] - old.bytes[1],
                                wire_packets(f)));
  }
}

// Exactly one thing happened, and the counted flow's key and bytes come
// from the frame.
void check_outcome(const FuzzFrame &f, const Outcome &out, const L4Readings &batch, Problems &bad) {
  if (int(out.malformed) + int(out.untracked) + int(out.key.has_value()) != 1) {
    bad.push_back(fmt::format("outcome: malformed {} untracked {} counted {}", out.malformed,
                              out.untracked, out.key.has_value()));
    return;
  }
  if (!out.key || out.dir > 1)
    return;
  std::vector<size_t> l3s = readings_of_key(f.data, *out.key, out.dir, batch);
  if (l3s.empty())
    bad.push_back("no reading of the frame gives the flow " + describe(*out.key) +
                  fmt::format(" (direction {})", out.dir));
  bool fits = std::any_of(l3s.begin(), l3s.end(), [&](size_t l3) {
    return bytes_fit(f.data, *out.key, l3, wire_packets(f), out.bytes);
  });
  if (!l3s.empty() && !fits)
    bad.push_back(fmt::format("{} bytes do not fit the frame", out.bytes));
}

// ---------------------------------------------------------------- what the generator knows

// The expected key in canonical order (lower address, then lower port,
// first) and the direction of the frame, per the ABI's description.
std::pair<tcf_flow_key, int> canonical(tcf_flow_key k) {
  int order = std::memcmp(k.addr[0], k.addr[1], sizeof(k.addr[0]));
  if (order < 0 || (order == 0 && k.port[0] <= k.port[1]))
    return {k, TCF_DIR_FWD};
  std::swap(k.addr[0], k.addr[1]);
  std::swap(k.port[0], k.port[1]);
  return {k, TCF_DIR_REV};
}

// Later fragments: their ports, kind and protocol may be their first fragment's.
bool same_but_l4(tcf_flow_key a, tcf_flow_key b) {
  a.port[0] = a.port[1] = b.port[0] = b.port[1] = 0;
  a.kind = b.kind = 0;
  a.proto = b.proto = 0;
  return std::memcmp(&a, &b, sizeof(a)) == 0;
}

// A valid frame: counted (or untracked, the map being full) under the key
// the generator built, with its IP bytes plus, for a GSO frame, the headers
// every further segment repeats.
void check_expected(const FuzzFrame &f, const Outcome &out, Problems &bad) {
  const Expected &e = f.expected;
  if (out.malformed)
    bad.push_back(fmt::format("a valid frame counted as {}", counter_name(out.reason)));
  if (!out.key)
    return;
  auto [key, dir] = canonical(e.key);
  bool key_ok =
      e.ports_known ? std::memcmp(&key, &*out.key, sizeof(key)) == 0 : same_but_l4(key, *out.key);
  if (!key_ok)
    bad.push_back("expected the flow " + describe(key));
  if (e.ports_known && dir != out.dir)
    bad.push_back(fmt::format("expected direction {}", dir));
  uint64_t bytes = e.bytes + uint64_t(wire_packets(f) - 1) * e.hdr_len;
  if (out.bytes != bytes)
    bad.push_back(fmt::format("expected {} bytes, counted {}", bytes, out.bytes));
}

void check_must(const FuzzFrame &f, const Outcome &out, Problems &bad) {
  static constexpr std::pair<Must, tcf_counter> reasons[] = {
      {Must::malformed_ipv4, TCF_CTR_MAL_IPV4},
      {Must::malformed_ipv6, TCF_CTR_MAL_IPV6},
      {Must::malformed_ipv6_ext, TCF_CTR_MAL_IPV6_EXT},
  };
  if (auto reason = invalid_header(f.data, is_super_packet(f.opts));
      reason && (!out.malformed || out.reason != *reason))
    bad.push_back(fmt::format("an invalid header: must be {}, was {}", counter_name(*reason),
                              out.malformed ? counter_name(out.reason) : "counted"));
  if (f.must == Must::count)
    return check_expected(f, out, bad);
  for (auto [must, reason] : reasons)
    if (f.must == must && (!out.malformed || out.reason != reason))
      bad.push_back(fmt::format("must be malformed ({}), was {}", counter_name(reason),
                                out.malformed ? counter_name(out.reason) : "counted"));
}

// ---------------------------------------------------------------- running

// Frames the kernel refuses before the program runs (see test_parser.cpp):
// shorter than Ethernet, or an IP EtherType without a whole IP header. The
// read entry takes them all (they are in captures).
bool refused_by_test_run(const Harness &h, const FuzzFrame &f) {
  if (h.entry_for(f.opts) == Entry::read)
    return false;
  if (f.data.size() < 14)
    return true;
  uint16_t type = uint16_t(f.data[12] << 8 | f.data[13]);
  return (type == 0x0800 && f.data.size() < 14 + 20) || (type == 0x86dd && f.data.size() < 14 + 40);
}

bool same_state(const State &a, const State &b) {
  return a.counters == b.counters && a.slots.size() == b.slots.size() &&
         std::equal(a.slots.begin(), a.slots.end(), b.slots.begin(),
                    [](const auto &p, const auto &q) {
                      return p.first == q.first && same_conn(p.second, q.second);
                    });
}

struct Stats {
  uint64_t frames = 0, refused = 0, malformed = 0, untracked = 0, counted = 0, gso = 0;
  uint64_t valid = 0, broken = 0, invalid = 0, batches = 0, ended = 0;
};

const char *must_name(Must m) {
  static constexpr const char *names[] = {"anything", "count", "malformed_ipv4", "malformed_ipv6",
                                          "malformed_ipv6_ext"};
  return names[int(m)];
}

// Runs one frame and checks what changed; returns the state after it.
State step(Harness &h, const FuzzFrame &f, const State &before, const L4Readings &l4, Stats &stats,
           Problems &bad) {
  uint32_t retval = 0;
  int err = h.run_unchecked(f.data, f.opts, retval);
  bool refused = refused_by_test_run(h, f);
  if (err != (refused ? -EINVAL : 0))
    bad.push_back(fmt::format("test_run returned {} ({})", err,
                              refused ? "refusal expected" : "ok expected"));
  if (!err && int(retval) != TC_ACT_UNSPEC)
    bad.push_back(fmt::format("verdict {}, not TC_ACT_UNSPEC", int(retval)));
  State after = read_state(h);
  stats.frames++;
  if (err) {
    stats.refused++;
    if (!same_state(before, after))
      bad.push_back("a refused frame changed the maps");
    return after;
  }
  Outcome out;
  check_counters(before.counters, after.counters, f, out, bad);
  check_slots(before, after, bad);
  find_counted(before, after, f, out, bad);
  check_outcome(f, out, l4, bad);
  check_must(f, out, bad);
  stats.malformed += out.malformed;
  stats.untracked += out.untracked;
  stats.counted += out.key.has_value();
  stats.gso += is_super_packet(f.opts);
  stats.valid += f.must == Must::count;
  stats.broken += f.must != Must::count && f.must != Must::anything;
  stats.invalid += invalid_header(f.data, is_super_packet(f.opts)).has_value();
  return after;
}

std::string report(uint64_t seed, uint64_t batch, size_t index, const FuzzFrame &f,
                   const Problems &bad) {
  std::string text = fmt::format(
      "fuzz failure, repeat with TCF_FUZZ_SEED={} TCF_FUZZ_FIRST_BATCH={} (frame {} of the batch)\n"
      "  frame: {}\n  hook {} gso_segs {} gso_size {} tstamp {}; generator says: {}\n",
      seed, batch, index, f.how, f.opts.hook, f.opts.gso_segs, f.opts.gso_size, f.opts.tstamp,
      must_name(f.must));
  for (size_t i = 0; i < bad.size() && i < 8; i++)
    text += "  - " + bad[i] + "\n";
  return text + hex(f.data);
}

// The table at the end of a batch: one ACTIVE slot per key, the one its
// mapping names; every slot taken was counted as a connection.
void check_table(Harness &h, const State &s, Problems &bad) {
  std::map<RawKey, uint32_t> active;
  for (const auto &[slot, c] : s.slots) {
    if (slot_kind(c.state) != TCF_SLOT_ACTIVE)
      continue;
    if (!active.emplace(raw(c.key), slot).second)
      bad.push_back("two active slots for " + describe(c.key));
    auto mapped = h.flow(c.key);
    if (!mapped || !same_conn(*mapped, c))
      bad.push_back("an active slot its key's mapping does not name: " + describe(c.key));
  }
  if (s.counters[TCF_CTR_CONNECTIONS] != s.slots.size())
    bad.push_back(fmt::format("{} connections counted, {} slots taken",
                              s.counters[TCF_CTR_CONNECTIONS], s.slots.size()));
}

uint64_t mix(uint64_t x) { // splitmix64
  x += 0x9e3779b97f4a7c15;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9;
  x = (x ^ (x >> 27)) * 0x94d049bb133111eb;
  return x ^ (x >> 31);
}

// One batch on emptied maps: frames one at a time, each checked.
void run_batch(Harness &h, uint64_t seed, uint64_t batch, uint64_t frames, Stats &stats) {
  h.reset(fuzz_slots);
  FrameGenerator gen(mix(seed ^ mix(batch)));
  State state = read_state(h);
  L4Readings l4;
  for (size_t i = 0; i < frames; i++) {
    FuzzFrame f = gen.next();
    add_l4_readings(f.data, l4);
    Problems bad;
    state = step(h, f, state, l4, stats, bad);
    if (!bad.empty())
      FAIL(report(seed, batch, i, f, bad));
  }
  Problems bad;
  check_table(h, state, bad);
  if (!bad.empty())
    FAIL(fmt::format("fuzz failure in batch {} (TCF_FUZZ_SEED={}): {}", batch, seed, bad[0]));
  for (const auto &[slot, c] : state.slots)
    stats.ended += slot_kind(c.state) == TCF_SLOT_ENDED;
  stats.batches++;
}

TEST_CASE("fuzz: random and mutated frames keep every invariant") {
  uint64_t seed = env_number("TCF_FUZZ_SEED", default_seed);
  uint64_t frames = env_number("TCF_FUZZ_FRAMES", default_frames);
  uint64_t batch = env_number("TCF_FUZZ_FIRST_BATCH", 0);
  fmt::print("fuzz: seed {}, {} frames from batch {} (TCF_FUZZ_SEED, TCF_FUZZ_FRAMES, "
             "TCF_FUZZ_FIRST_BATCH override)\n",
             seed, frames, batch);
  std::fflush(stdout);
  Harness h(fuzz_config());
  Stats stats;
  auto start = std::chrono::steady_clock::now();
  for (; stats.frames < frames; batch++)
    run_batch(h, seed, batch,
              std::min<uint64_t>(16 + mix(seed + batch) % 113, frames - stats.frames), stats);
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  fmt::print("fuzz: {} frames in {} batches, {:.1f} s: refused {}, malformed {}, counted {}, "
             "untracked {}, gso {}, valid {}, broken on purpose {}, invalid headers {}, "
             "ended connections {}\n",
             stats.frames, stats.batches, took.count(), stats.refused, stats.malformed,
             stats.counted, stats.untracked, stats.gso, stats.valid, stats.broken, stats.invalid,
             stats.ended);
}

} // namespace
