#include "kernel_model.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace model {
namespace {

thread_local Cpu *current_cpu = nullptr;

// A step of the CPU running this packet (nothing outside a simulated CPU).
void step_point(const char *name) {
  if (current_cpu)
    current_cpu->yield(name);
}

} // namespace
} // namespace model

// The environment bpf/conn.h expects (see there), on the model.
struct tcf_env {
  model::Kernel *k;
};

#define TCF_INLINE static inline
#define tcf_cfg_of(env) (&(env)->k->cfg)

static inline __u32 tcf_load32(const __u32 *p) {
  model::step_point("load32");
  return *p;
}
static inline __u64 tcf_load64(const __u64 *p) {
  model::step_point("load64");
  return *p;
}
static inline __u32 tcf_cas32(__u32 *p, __u32 expected, __u32 desired) {
  model::step_point("cas32");
  __u32 old = *p;
  if (old == expected)
    *p = desired;
  return old;
}
static inline __u64 tcf_cas64(__u64 *p, __u64 expected, __u64 desired) {
  model::step_point("cas64");
  __u64 old = *p;
  if (old == expected)
    *p = desired;
  return old;
}
static inline __u32 tcf_xchg32(__u32 *p, __u32 v) {
  model::step_point("xchg32");
  __u32 old = *p;
  *p = v;
  return old;
}
static inline __u32 tcf_or32(__u32 *p, __u32 v) {
  model::step_point("or32");
  __u32 old = *p;
  *p |= v;
  return old;
}
static inline void tcf_or64(__u64 *p, __u64 v) {
  model::step_point("or64");
  *p |= v;
}
static inline void tcf_add32(__u32 *p, __u32 v) {
  model::step_point("add32");
  *p += v;
}
static inline void tcf_add64(__u64 *p, __u64 v) {
  model::step_point("add64");
  *p += v;
}
static inline __u32 tcf_adds32(__u32 *p, __u32 v) {
  model::step_point("adds32");
  __u32 old = *p;
  *p += v;
  return old;
}
static inline __s64 tcf_adds64(__s64 *p, __s64 v) {
  model::step_point("adds64");
  __s64 old = *p;
  *p += v;
  return old;
}

static inline __u64 *env_index(tcf_env *env, __u32 position) {
  auto &index = env->k->index;
  return position < index.size() ? reinterpret_cast<__u64 *>(&index[position]) : nullptr;
}
static inline tcf_conn *env_slot(tcf_env *env, __u32 index) {
  return index < env->k->conns.size() ? &env->k->conns[index] : nullptr;
}
static inline tcf_pool *env_pool(tcf_env *env) { return &env->k->pool; }
static inline int env_pop_slot(tcf_env *env, __u32 *index) {
  model::step_point("pop");
  auto &stack = env->k->free_stack;
  if (stack.empty())
    return -2; // ENOENT
  *index = stack.back();
  stack.pop_back();
  return 0;
}
static inline void env_push_slot(tcf_env *env, __u32 index) {
  model::step_point("push");
  env->k->free_stack.push_back(index);
}
static inline __u64 env_clock(tcf_env *env) {
  model::step_point("clock");
  return env->k->clock_ns;
}
static inline void env_count(tcf_env *env, int counter, __u64 n) { env->k->counters[counter] += n; }
static inline int env_doorbell(tcf_env *env, __s64) {
  model::step_point("doorbell");
  auto &k = *env->k;
  if (k.ring_room <= 0)
    return -28; // ENOSPC
  k.ring_room--;
  k.doorbells++;
  return 0;
}

#include "conn.h"

namespace model {

Cpu::~Cpu() {
  finish();
  if (thread_.joinable())
    thread_.join();
}

void Cpu::wait_stopped(std::unique_lock<std::mutex> &lock) {
  cv_.wait(lock, [&] { return stopped_; });
}

void Cpu::start(std::function<void()> work) {
  finish();
  if (thread_.joinable())
    thread_.join();
  std::unique_lock lock(mutex_);
  done_ = stopped_ = false;
  credits_ = 0;
  next_.clear();
  thread_ = std::thread([this, work = std::move(work)] {
    current_cpu = this;
    work();
    std::lock_guard guard(mutex_);
    done_ = stopped_ = true;
    next_.clear();
    cv_.notify_all();
  });
  wait_stopped(lock);
}

void Cpu::yield(const char *name) {
  std::unique_lock lock(mutex_);
  if (credits_ == 0) {
    next_ = name;
    stopped_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return credits_ > 0; });
    stopped_ = false;
  }
  credits_--;
}

void Cpu::step(int n) {
  std::unique_lock lock(mutex_);
  if (done_)
    return;
  credits_ += n;
  stopped_ = false;
  cv_.notify_all();
  wait_stopped(lock);
}

void Cpu::run_to(const std::string &name) {
  while (busy() && next() != name)
    step(1);
}

void Cpu::finish() {
  while (busy())
    step(1000);
}

bool Cpu::busy() const {
  std::lock_guard lock(mutex_);
  return !done_;
}

std::string Cpu::next() const {
  std::lock_guard lock(mutex_);
  return next_;
}

Kernel::Kernel(uint32_t slots, size_t cpu_count)
    : conns(slots), index(std::bit_ceil(2 * size_t(slots))) {
  cfg.idle_ns[TCF_IDLE_TCP] = 300 * sec;
  cfg.idle_ns[TCF_IDLE_UDP] = 60 * sec;
  cfg.idle_ns[TCF_IDLE_ICMP] = 60 * sec;
  cfg.idle_ns[TCF_IDLE_OTHER] = 60 * sec;
  cfg.digest_mask = ~0ull;
  cfg.slots = slots;
  cfg.index_mask = uint32_t(index.size() - 1);
  cfg.bell_below = 2;
  pool.bell_armed = 1;
  for (size_t i = 0; i < cpu_count; i++)
    cpus.push_back(std::make_unique<Cpu>());
}

size_t Kernel::mapped() const {
  return std::count_if(index.begin(), index.end(), [](uint64_t e) { return TCF_INDEX_SLOT(e); });
}

void Kernel::advance(uint64_t ns) { clock_ns += ns; }

namespace {

// The program's view of a packet (what tcflows.bpf.c's to_packet makes).
tcf_packet to_packet(const Packet &packet) {
  tcf_packet p{};
  p.key = packet.key;
  p.dir = uint8_t(tcflows::canonicalise(p.key));
  p.pkts = 1;
  p.bytes = packet.bytes;
  p.tcp_seq = packet.seq;
  p.tcp_ack = packet.ack;
  p.tcp_payload = packet.data ? packet.payload : 0;
  p.tcp_window = packet.window;
  p.egress = packet.egress;
  p.tcp = p.key.proto == 6 && p.key.kind == TCF_KIND_PORTS;
  p.tcp_flags = p.tcp ? packet.tcp_flags : 0;
  p.bits = tcf_seen_bits(p.tcp, p.tcp_flags, packet.data);
  p.icmp_type = packet.icmp_type;
  p.icmp_code = packet.icmp_code;
  return p;
}

} // namespace

void Kernel::start(size_t cpu, const Packet &packet) {
  tcf_packet p = to_packet(packet);
  counters[TCF_CTR_FRAMES]++;
  cpus.at(cpu)->start([this, p]() mutable {
    tcf_env env{this};
    tcf_account(&env, &p);
  });
}

void Kernel::send(const Packet &packet) {
  start(0, packet);
  cpus[0]->finish();
}

void Kernel::finish_all() {
  for (auto &cpu : cpus)
    cpu->finish();
}

void Table::scan(const Visit &visit) {
  if (before_scan)
    before_scan();
  visit(0, {k_.conns.data(), used()});
}

void Table::with_slot(uint32_t index, const std::function<void(tcf_conn &)> &visit) {
  if (index < used())
    visit(k_.conns[index]);
}

void Table::synchronize() {
  k_.finish_all();
  synchronized++;
}

void Table::release(std::span<const uint32_t> slots) {
  for (uint32_t slot : slots)
    k_.free_stack.push_back(slot);
  k_.pool.free += int64_t(slots.size());
}

} // namespace model
