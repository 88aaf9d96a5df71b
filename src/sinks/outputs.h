// Where connection records go, behind one interface: JSON lines (--jsonl),
// IPFIX collectors (--ipfix) and the SQLite store (--db), each optional. The
// agent hands every interval over to all of them at once, in chunks as it
// makes them:
//
//   outputs.begin(now_ns, interfaces);
//   outputs.add(chunk); ...            // JSONL and IPFIX write each at once
//   uint64_t n = outputs.end(counters); // the store writes the interval now
//
// and learns from durable() (or on_durable) when interval n is committed.
// Everything but the store's own thread runs on the agent's loop.
#pragma once

#include "kernel/counters.h"
#include "sinks/interfaces.h"
#include "sinks/ipfix_export.h"
#include "sinks/jsonl.h"
#include "sinks/stats.h"
#include "sinks/store.h"
#include "sinks/store_writer.h"
#include "track/conn.h"

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace tcflows {

struct OutputsConfig {
  std::string jsonl;              // "": none; "-": standard output
  std::vector<std::string> ipfix; // collector URLs
  std::chrono::nanoseconds ipfix_active = std::chrono::seconds(60);
  std::optional<StoreConfig> store; // none: --no-db
};

class Outputs {
public:
  // Opens the JSONL file, resolves the collectors and opens the database, in
  // the caller's thread and with its rights. Throws Fatal when one of them
  // cannot be used.
  Outputs(boost::asio::io_context &io, const OutputsConfig &config);
  // The store writes every ended interval, then its thread stops; an
  // interval begun and not ended is not written.
  ~Outputs();
  Outputs(const Outputs &) = delete;
  Outputs &operator=(const Outputs &) = delete;

  // Opens the IPFIX sockets (TCP collectors connect in the background).
  void start();

  // One interval. `now_ns` is its end (Unix epoch ns): what the store's rows
  // and the IPFIX export are stamped with; `interfaces` names the records'
  // interfaces. Chunks may be of any size, also empty.
  void begin(uint64_t now_ns, InterfacesSnapshot interfaces);
  void add(std::vector<ConnUpdate> chunk);
  // `counters`, as read at the interval's end, go to the database with it
  // (null: no counters row for this interval). Returns the interval's
  // sequence number: 1, 2, 3, ...
  uint64_t end(const Counters *counters);
  // begin, add and end for an interval at once.
  uint64_t deliver(std::vector<ConnUpdate> updates, uint64_t now_ns, InterfacesSnapshot interfaces,
                   const Counters &counters);

  // The highest sequence number whose records are durable with every
  // earlier one's: committed to the database, or, without one, written to
  // JSONL and handed to IPFIX (every ended interval). See
  // StoreWriter::committed() for what failing writes do to it.
  uint64_t durable() const;
  // Called on the io_context's thread whenever durable() advances.
  void on_durable(std::function<void(uint64_t sequence)> callback);

  // Restart: the connections the database held as open (an earlier
  // agent's), handed out once; and those of them that ended meanwhile,
  // closed with the next write. Nothing without a database.
  std::vector<StoredOpenConn> take_open_connections();
  void close_stale(std::vector<Uid> uids);
  bool has_store() const { return store_.has_value(); }
  // Whether the database holds the connection's final record already (an
  // earlier agent wrote it, then stopped before its slot went back); false
  // without a database.
  bool already_final(const Uid &uid);

  // At shutdown, after the last interval: the collectors get what is queued
  // (for a grace time), then close, so that the loop can end.
  void finish();

  // The outputs' part of the statistics snapshot: final records delivered,
  // traffic per interface, and each sink's own numbers.
  void add_to(Stats &stats) const;

private:
  void count(const ConnUpdate &update);
  void committed(uint64_t sequence);

  boost::asio::io_context &io_;
  std::optional<JsonlWriter> jsonl_;
  std::optional<IpfixExporter> ipfix_;
  std::optional<StoreWriter> store_;
  std::function<void(uint64_t)> on_durable_;
  uint64_t sequence_ = 0;
  bool open_ = false; // between begin() and end()
  uint64_t now_ns_ = 0;
  InterfacesSnapshot interfaces_ = std::make_shared<InterfaceNames>();
  std::map<std::pair<ConnState, CloseReason>, uint64_t> closed_;
  std::map<uint32_t, InterfaceTraffic> traffic_; // by ifindex
};

} // namespace tcflows
