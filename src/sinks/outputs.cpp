#include "sinks/outputs.h"

#include <boost/asio/post.hpp>

#include <cassert>

namespace tcflows {

Outputs::Outputs(boost::asio::io_context &io, const OutputsConfig &config) : io_(io) {
  if (!config.jsonl.empty())
    jsonl_.emplace(config.jsonl);
  if (!config.ipfix.empty())
    ipfix_.emplace(io, config.ipfix, config.ipfix_active);
  if (config.store)
    store_.emplace(*config.store, [this](uint64_t sequence) {
      boost::asio::post(io_, [this, sequence] { committed(sequence); });
    });
}

Outputs::~Outputs() = default;

void Outputs::start() {
  if (ipfix_)
    ipfix_->start();
}

void Outputs::begin(uint64_t now_ns, InterfacesSnapshot interfaces) {
  assert(!open_);
  open_ = true;
  now_ns_ = now_ns;
  if (interfaces)
    interfaces_ = std::move(interfaces);
}

void Outputs::add(std::vector<ConnUpdate> chunk) {
  assert(open_);
  if (chunk.empty())
    return;
  for (const auto &update : chunk)
    count(update);
  if (jsonl_)
    jsonl_->write(chunk, *interfaces_);
  if (ipfix_)
    ipfix_->add(chunk, *interfaces_, now_ns_);
  if (store_)
    store_->add(std::move(chunk)); // moved, not copied: an interval can hold every connection
}

uint64_t Outputs::end(const Counters *counters) {
  assert(open_);
  open_ = false;
  if (ipfix_)
    ipfix_->end(*interfaces_, now_ns_);
  if (store_)
    return sequence_ = store_->end(counters, now_ns_, interfaces_);
  uint64_t sequence = ++sequence_;
  boost::asio::post(io_, [this, sequence] { committed(sequence); });
  return sequence;
}

uint64_t Outputs::deliver(std::vector<ConnUpdate> updates, uint64_t now_ns,
                          InterfacesSnapshot interfaces, const Counters &counters) {
  begin(now_ns, std::move(interfaces));
  add(std::move(updates));
  return end(&counters);
}

uint64_t Outputs::durable() const { return store_ ? store_->committed() : sequence_; }

void Outputs::on_durable(std::function<void(uint64_t)> callback) {
  on_durable_ = std::move(callback);
}

void Outputs::committed(uint64_t sequence) {
  if (on_durable_)
    on_durable_(sequence);
}

std::vector<StoredOpenConn> Outputs::take_open_connections() {
  return store_ ? store_->take_open_connections() : std::vector<StoredOpenConn>{};
}

bool Outputs::already_final(const Uid &uid) { return store_ && store_->is_final(uid); }

void Outputs::close_stale(std::vector<Uid> uids) {
  if (store_ && !uids.empty())
    store_->close_stale(std::move(uids));
}

void Outputs::finish() {
  if (ipfix_)
    ipfix_->finish();
}

// Each direction of a connection crosses one hook; on loopback only ingress
// is hooked and every packet comes in there.
void Outputs::count(const ConnUpdate &update) {
  const ConnRecord &r = update.record;
  const TrafficDelta &d = update.delta;
  InterfaceTraffic &t = traffic_[r.ifindex()];
  bool loopback = interfaces_->is_loopback(r.ifindex());
  int orig = loopback || r.orig_ingress ? 0 : 1, resp = loopback || !r.orig_ingress ? 0 : 1;
  t.pkts[orig] += d.orig_pkts;
  t.bytes[orig] += d.orig_bytes;
  t.pkts[resp] += d.resp_pkts;
  t.bytes[resp] += d.resp_bytes;
  if (update.final())
    closed_[{r.state, r.close_reason}]++;
}

void Outputs::add_to(Stats &stats) const {
  stats.closed = closed_;
  stats.interfaces.clear();
  for (const auto &[ifindex, traffic] : traffic_) {
    auto &sum = stats.interfaces[interfaces_->name_of(ifindex)];
    for (int slot = 0; slot < 3; slot++) {
      sum.pkts[slot] += traffic.pkts[slot];
      sum.bytes[slot] += traffic.bytes[slot];
    }
  }
  if (store_)
    stats.store = store_->stats();
  if (jsonl_)
    stats.jsonl_errors = jsonl_->errors();
  if (ipfix_) {
    stats.ipfix = ipfix_->collectors();
    stats.ipfix_skipped = ipfix_->records_skipped();
  }
}

} // namespace tcflows
