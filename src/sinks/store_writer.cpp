#include "sinks/store_writer.h"

#include "util/log.h"

#include <malloc.h>

#include <utility>

namespace tcflows {
namespace {

constexpr size_t expire_batch_rows = 5000;
constexpr int max_expire_batches = 20;
constexpr size_t trim_after_updates = 10'000;

// A batch can hold every open connection (all of them new after a burst);
// glibc keeps what such a batch freed unless asked to give it back.
void release_memory(std::vector<ConnUpdate> batch) {
  size_t size = batch.size();
  batch = {};
  if (size >= trim_after_updates)
    malloc_trim(0);
}

} // namespace

StoreWriter::StoreWriter(StoreConfig config)
    : store_(std::move(config)), open_at_start_(store_.open_connections()), stats_(store_.stats()),
      thread_([this] { run(); }) {}

std::vector<StoredOpenConn> StoreWriter::take_open_connections() {
  return std::exchange(open_at_start_, {});
}

void StoreWriter::close_stale(std::vector<std::string> uids) {
  std::lock_guard lock(mutex_);
  stale_.insert(stale_.end(), std::make_move_iterator(uids.begin()),
                std::make_move_iterator(uids.end()));
}

StoreWriter::~StoreWriter() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void StoreWriter::submit(std::vector<ConnUpdate> updates, const Counters &counters,
                         uint64_t now_ns) {
  {
    std::lock_guard lock(mutex_);
    if (updates_.empty())
      updates_ = std::move(updates);
    else
      updates_.insert(updates_.end(), std::make_move_iterator(updates.begin()),
                      std::make_move_iterator(updates.end()));
    counters_ = counters;
    now_ns_ = now_ns;
    pending_ = true;
  }
  wake_.notify_one();
}

StoreStats StoreWriter::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

std::string StoreWriter::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

size_t StoreWriter::backlog() const {
  std::lock_guard lock(mutex_);
  return updates_.size();
}

void StoreWriter::run() {
  for (;;) {
    std::vector<ConnUpdate> updates;
    Counters counters;
    uint64_t now_ns;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return pending_ || stop_; });
      if (!pending_)
        return; // stopped, nothing left
      updates.swap(updates_);
      store_.close_stale(std::exchange(stale_, {}));
      counters = counters_;
      now_ns = now_ns_;
      pending_ = false;
    }
    bool ok = store_.write(updates, counters, now_ns);
    release_memory(std::move(updates));
    // Retention in small transactions, a bounded number per interval.
    for (int batch = 0; ok && batch < max_expire_batches; batch++)
      if (store_.expire(now_ns, expire_batch_rows) < expire_batch_rows)
        break;
    std::lock_guard lock(mutex_);
    if (!ok && last_error_ != store_.last_error())
      log::warn("writing {} failed, records kept in memory: {}", store_.path(),
                store_.last_error());
    stats_ = store_.stats();
    last_error_ = store_.last_error();
  }
}

} // namespace tcflows
