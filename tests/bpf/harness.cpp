#include "harness.h"

#include "kernel/index.h"
#include "track/flow.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace tcflows::test {

ProgramConfig test_config(uint32_t max_flows) {
  ProgramConfig config;
  config.max_flows = max_flows;
  config.ringbuf_bytes = 64 * 1024;
  config.kernel.flags = TCF_CFG_SKB_TSTAMP;
  return config;
}

Entry entry_from_environment() {
  const char *entry = std::getenv("TCF_TEST_ENTRY");
  return entry && std::string_view(entry) == "read" ? Entry::read : Entry::hooks;
}

Harness::Harness(const ProgramConfig &config)
    : program_(BpfProgram::load(config)), entry_(entry_from_environment()), batch_(program_),
      table_(kernel_conn_table(program_)) {
  auto on_doorbell = [](void *ctx, void *, size_t size) {
    REQUIRE(size == sizeof(tcf_doorbell));
    (*static_cast<size_t *>(ctx))++;
    return 0;
  };
  ring_ = ring_buffer__new(program_.events_fd(), on_doorbell, &doorbells_, nullptr);
  REQUIRE_MESSAGE(ring_ != nullptr, "ring_buffer__new failed");
  reset();
}

Harness::~Harness() { ring_buffer__free(ring_); }

Entry Harness::entry_for(const RunOpts &opts) const {
  bool offline = program_.kernel_config().flags & TCF_CFG_SKB_TSTAMP;
  bool capturable = offline && !opts.gso_segs && !opts.gso_size;
  return capturable ? entry_ : Entry::hooks;
}

int Harness::run(const Bytes &frame, RunOpts opts) {
  clock_ = opts.tstamp ? opts.tstamp : clock_ + 1000;
  opts.tstamp = clock_;
  uint32_t retval = 0;
  int err = run_unchecked(frame, opts, retval);
  REQUIRE_MESSAGE(err == 0, "bpf_prog_test_run_opts failed: ", std::string(strerror(-err)));
  CHECK(int(retval) == TC_ACT_UNSPEC);
  return err;
}

int Harness::run_unchecked(const Bytes &frame, const RunOpts &opts, uint32_t &retval) {
  if (entry_for(opts) == Entry::read) {
    uint32_t length = std::max<uint32_t>(opts.frame_len, uint32_t(frame.size()));
    batch_.add(frame, length, opts.tstamp, opts.hook, test_ifindex);
    return batch_.run(&retval);
  }
  __sk_buff ctx{};
  ctx.tstamp = opts.tstamp;
  ctx.gso_segs = opts.gso_segs;
  ctx.gso_size = opts.gso_size;
  ctx.cb[TCF_CB_FRAME_LEN] = opts.frame_len;
  LIBBPF_OPTS(bpf_test_run_opts, run_opts, .data_in = frame.data(),
              .data_size_in = uint32_t(frame.size()), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
              .repeat = 1);
  int fd = opts.hook == TCF_HOOK_INGRESS ? program_.ingress_fd() : program_.egress_fd();
  int err = bpf_prog_test_run_opts(fd, &run_opts);
  retval = run_opts.retval;
  return err;
}

std::vector<SlotEntry> Harness::slots_in(uint32_t kind) const {
  std::vector<SlotEntry> out;
  table_->scan([&](uint32_t first, std::span<tcf_conn> slots) {
    for (uint32_t i = 0; i < slots.size(); i++)
      if (slot_kind(slots[i].state) == kind)
        out.push_back({first + i, slots[i].key, slots[i]});
  });
  return out;
}

std::vector<SlotEntry> Harness::flows() const { return slots_in(TCF_SLOT_ACTIVE); }

std::vector<SlotEntry> Harness::ended() const { return slots_in(TCF_SLOT_ENDED); }

std::optional<tcf_conn> Harness::flow(const tcf_flow_key &key) const {
  auto holds = [&](uint32_t slot) {
    bool same = false;
    table_->with_slot(slot, [&](tcf_conn &c) { same = c.key == key; });
    return same;
  };
  auto slot = IndexView(table_->index(), table_->digest_mask()).find(key, holds);
  std::optional<tcf_conn> out;
  if (slot)
    table_->with_slot(*slot, [&](tcf_conn &c) { out = c; });
  return out;
}

namespace {

void empty_map(int fd) {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  REQUIRE(bpf_obj_get_info_by_fd(fd, &info, &len) == 0);
  std::vector<uint8_t> key(info.key_size);
  while (bpf_map_get_next_key(fd, nullptr, key.data()) == 0)
    REQUIRE(bpf_map_delete_elem(fd, key.data()) == 0);
}

} // namespace

void Harness::reset(uint32_t slots) {
  empty_map(program_.frags_fd());
  auto index = table_->index();
  std::fill(index.begin(), index.end(), 0);
  uint32_t taken;
  while (bpf_map_lookup_and_delete_elem(program_.free_slots_fd(), nullptr, &taken) == 0) {
  }
  tcf_pool &pool = table_->pool();
  pool = tcf_pool{};
  pool.used = table_->capacity(); // for the scan that empties every slot
  table_->scan(
      [](uint32_t, std::span<tcf_conn> all) { std::memset(all.data(), 0, all.size_bytes()); });
  pool = tcf_pool{};
  pool.bell_armed = 1;
  // Fewer slots: those before the last `slots` count as taken (and stay FREE).
  pool.used = table_->capacity() - std::min(slots, table_->capacity());
  std::vector<uint64_t> zeros(libbpf_num_possible_cpus(), 0);
  for (uint32_t i = 0; i < TCF_CTR_MAX; i++)
    REQUIRE(bpf_map_update_elem(program_.counters_fd(), &i, zeros.data(), BPF_ANY) == 0);
  doorbells();
  doorbells_ = 0;
  clock_ = 1'000'000'000;
}

Harness &shared_harness() {
  static Harness harness;
  return harness;
}

Counters Harness::counters() const { return read_counters(program_.counters_fd()); }

size_t Harness::doorbells() {
  REQUIRE(ring_buffer__consume(ring_) >= 0);
  return std::exchange(doorbells_, 0);
}

namespace {

tcf_flow_key base_key(uint8_t proto, uint16_t pa, uint16_t pb, uint8_t kind) {
  tcf_flow_key key{};
  key.proto = proto;
  key.port[0] = pa;
  key.port[1] = pb;
  key.kind = kind;
  key.ifindex = test_ifindex;
  return key;
}

} // namespace

tcf_flow_key ip4_key(uint8_t proto, std::string_view a, uint16_t pa, std::string_view b,
                     uint16_t pb, uint8_t kind) {
  tcf_flow_key key = base_key(proto, pa, pb, kind);
  key.ethertype = ETH_P_IP;
  key.addr[0][0] = ipv4_addr(a);
  key.addr[1][0] = ipv4_addr(b);
  return key;
}

tcf_flow_key ip6_key(uint8_t proto, std::string_view a, uint16_t pa, std::string_view b,
                     uint16_t pb, uint8_t kind) {
  tcf_flow_key key = base_key(proto, pa, pb, kind);
  key.ethertype = ETH_P_IPV6;
  auto x = ipv6_addr(a), y = ipv6_addr(b);
  std::memcpy(key.addr[0], x.data(), 16);
  std::memcpy(key.addr[1], y.data(), 16);
  return key;
}

tcf_flow_key link_key(Mac a, Mac b, uint16_t ethertype, uint16_t saps) {
  tcf_flow_key key = base_key(0, saps, saps, TCF_KIND_LINK);
  key.ethertype = ethertype;
  std::memcpy(key.addr[0], a.data(), 6);
  std::memcpy(key.addr[1], b.data(), 6);
  return key;
}

tcf_flow_key with_vlan(tcf_flow_key key, uint16_t outer, uint16_t inner) {
  key.vlan[0] = outer;
  key.vlan[1] = inner;
  return key;
}

std::string describe(const tcf_flow_key &key) {
  return fmt::format("{} {} {} {} {} ethertype 0x{:04x} vlan {}/{} kind {} ifindex {}", key.proto,
                     addr_text(key, 0), key.port[0], addr_text(key, 1), key.port[1], key.ethertype,
                     key.vlan[0], key.vlan[1], key.kind, key.ifindex);
}

CounterValues malformed(tcf_counter reason, const Bytes &frame) {
  return {{TCF_CTR_MALFORMED, 1}, {reason, 1}, {TCF_CTR_MALFORMED_BYTES, frame.size()}};
}

namespace {

void check_flows(const Harness &h, const std::vector<ExpectedFlow> &expected) {
  auto actual = h.flows();
  for (const SlotEntry &entry : actual) {
    auto match = std::find_if(expected.begin(), expected.end(),
                              [&](const ExpectedFlow &e) { return e.key == entry.key; });
    INFO("flow in the map: ", describe(entry.key));
    CHECK_MESSAGE(match != expected.end(), "unexpected flow");
  }
  for (const ExpectedFlow &e : expected) {
    INFO("expected flow: ", describe(e.key));
    auto val = h.flow(e.key);
    CHECK_MESSAGE(val.has_value(), "flow missing");
    if (!val)
      continue;
    CHECK(val->pkts[0] == e.pkts[0]);
    CHECK(val->pkts[1] == e.pkts[1]);
    CHECK(val->bytes[0] == e.bytes[0]);
    CHECK(val->bytes[1] == e.bytes[1]);
  }
  CHECK(actual.size() == expected.size());
}

// Counters a row checks: all but those that count what every row does, and
// retries and probes, which depend on how CPUs race and where digests fall.
bool checked(int counter) {
  return counter != TCF_CTR_FRAMES && counter != TCF_CTR_CONNECTIONS &&
         counter != TCF_CTR_RETRIES && counter != TCF_CTR_PROBES;
}

void check_counters(const Harness &h, const CounterValues &expected) {
  Counters actual = h.counters();
  for (int i = 0; i < TCF_CTR_MAX; i++) {
    if (!checked(i))
      continue;
    uint64_t want = 0;
    for (auto [index, value] : expected)
      if (index == i)
        want = value;
    INFO("counter ", counter_name(i));
    CHECK(actual[i] == want);
  }
}

} // namespace

void check_state(const Harness &h, const std::vector<ExpectedFlow> &flows,
                 const CounterValues &counters) {
  check_flows(h, flows);
  check_counters(h, counters);
}

void check_row(const Row &row, Harness &h) {
  INFO("row: ", row.name);
  h.reset();
  for (const Frame &frame : row.frames)
    h.run(frame.data, frame.opts);
  CHECK(h.counters()[TCF_CTR_FRAMES] == row.frames.size());
  check_state(h, row.flows, row.counters);
}

} // namespace tcflows::test
