// The SQLite store on a thread of its own, so that a slow disk or a locked
// database never stalls the capture loop. The loop hands over one batch per
// interval; the writer writes whatever has piled up in one transaction, in
// order, and applies the retention after each write.
#pragma once

#include "sinks/store.h"

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tcflows {

class StoreWriter {
public:
  // Opens the store here, in the caller's thread, so that a database that
  // cannot be used is a fatal error at start (Fatal from Store).
  explicit StoreWriter(StoreConfig config);
  // Writes what is still handed over, then stops the thread.
  ~StoreWriter();
  StoreWriter(const StoreWriter &) = delete;
  StoreWriter &operator=(const StoreWriter &) = delete;

  void submit(std::vector<ConnUpdate> updates, const Counters &counters, uint64_t now_ns);

  // The connections the database held as open when it was opened (an
  // earlier agent's); handed out once.
  std::vector<StoredOpenConn> take_open_connections();
  // Closes, with the next write, connections left open by an earlier agent.
  void close_stale(std::vector<std::string> uids);

  // As of the last write.
  StoreStats stats() const;
  std::string last_error() const;
  // Updates handed over but not yet written (nor queued by the store).
  size_t backlog() const;

private:
  void run();

  Store store_;
  std::vector<StoredOpenConn> open_at_start_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<ConnUpdate> updates_; // handed over, not yet taken by the thread
  std::vector<std::string> stale_;  // likewise
  Counters counters_{};
  uint64_t now_ns_ = 0;
  bool pending_ = false;
  bool stop_ = false;
  StoreStats stats_;
  std::string last_error_;
  std::thread thread_;
};

} // namespace tcflows
