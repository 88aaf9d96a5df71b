#include "sinks/store_writer.h"

#include "util/log.h"

#include <malloc.h>

#include <utility>

namespace tcflows {
namespace {

constexpr size_t expire_batch_rows = 5000;
constexpr int max_expire_batches = 20;
constexpr size_t trim_after_updates = 10'000;

size_t count_updates(const StoreBatch &batch) {
  size_t n = 0;
  for (const auto &chunk : batch.chunks)
    n += chunk.size();
  return n;
}

// An interval can hold every open connection (all of them new after a
// burst); glibc keeps what such a batch freed unless asked to give it back.
void release_memory(std::vector<StoreBatch> batches) {
  size_t size = 0;
  for (const auto &batch : batches)
    size += count_updates(batch);
  batches = {};
  if (size >= trim_after_updates)
    malloc_trim(0);
}

} // namespace

StoreWriter::StoreWriter(StoreConfig config, OnCommit on_commit)
    : store_(std::move(config)), on_commit_(std::move(on_commit)),
      open_at_start_(store_.open_connections()), stats_(store_.stats()),
      thread_([this] { run(); }) {}

std::vector<StoredOpenConn> StoreWriter::take_open_connections() {
  return std::exchange(open_at_start_, {});
}

bool StoreWriter::is_final(const Uid &uid) {
  std::lock_guard lock(store_mutex_);
  return store_.is_final(uid);
}

void StoreWriter::close_stale(std::vector<Uid> uids) {
  std::lock_guard lock(mutex_);
  stale_.insert(stale_.end(), uids.begin(), uids.end());
}

StoreWriter::~StoreWriter() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void StoreWriter::add(std::vector<ConnUpdate> chunk) {
  if (!chunk.empty())
    building_.chunks.push_back(std::move(chunk)); // moved, not copied
}

uint64_t StoreWriter::end(const Counters *counters, uint64_t now_ns,
                          InterfacesSnapshot interfaces) {
  StoreBatch batch = std::exchange(building_, {});
  if (counters)
    batch.counters = *counters;
  batch.now_ns = now_ns;
  batch.sequence = ++sequence_;
  batch.interfaces = std::move(interfaces);
  {
    std::lock_guard lock(mutex_);
    ended_updates_ += count_updates(batch);
    ended_.push_back(std::move(batch));
  }
  wake_.notify_one();
  return sequence_;
}

uint64_t StoreWriter::committed() const {
  std::lock_guard lock(mutex_);
  return committed_;
}

StoreStats StoreWriter::stats() const {
  size_t building = count_updates(building_);
  std::lock_guard lock(mutex_);
  StoreStats stats = stats_;
  stats.queued += ended_updates_ + building;
  return stats;
}

std::string StoreWriter::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

void StoreWriter::run() {
  for (;;) {
    std::vector<StoreBatch> batches;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return !ended_.empty() || stop_; });
      if (ended_.empty())
        return; // stopped, nothing left
      batches.swap(ended_);
      ended_updates_ = 0;
      store_.close_stale(std::exchange(stale_, {}));
    }
    std::unique_lock store_lock(store_mutex_);
    bool ok = store_.write(batches);
    uint64_t now_ns = batches.back().now_ns, sequence = batches.back().sequence;
    release_memory(std::move(batches));
    // Retention in small transactions, a bounded number per interval.
    for (int batch = 0; ok && batch < max_expire_batches; batch++)
      if (store_.expire(now_ns, expire_batch_rows) < expire_batch_rows)
        break;
    {
      std::lock_guard lock(mutex_);
      if (!ok && last_error_ != store_.last_error())
        log::warn("writing {} failed, records kept in memory: {}", store_.path(),
                  store_.last_error());
      stats_ = store_.stats();
      last_error_ = store_.last_error();
      if (ok)
        committed_ = sequence;
    }
    store_lock.unlock();
    if (ok && on_commit_)
      on_commit_(sequence);
  }
}

} // namespace tcflows
