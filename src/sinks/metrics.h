// `record --metrics ADDR:PORT`: the agent's numbers in the Prometheus text
// exposition format (version 0.0.4), served by a minimal HTTP/1.1 handler of
// GET /metrics on the agent's Asio loop.
#pragma once

#include "kernel/maps.h"
#include "sinks/ipfix_export.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tcflows {

// Packets and bytes of the connections recorded on one interface, by
// direction from the kernel's point of view (in: TC ingress, out: TC egress),
// summed from the records' deltas (so they advance at every --interval). Each
// direction of a connection crosses one hook, the one its first packet showed;
// on loopback, where only ingress is hooked, all is "in". Frames no flow took
// (malformed, map full) are in the kernel counters, not here. Slot 2
// ("unknown") stays for the format and is always 0.
struct InterfaceTraffic {
  uint64_t pkts[3] = {}; // [0] in, [1] out, [2] unknown
  uint64_t bytes[3] = {};
};

// The store's numbers (issue 4); absent until a store exists.
struct StoreMetrics {
  uint64_t queue_depth = 0;  // records waiting to be written
  uint64_t write_errors = 0; // failed transactions (their records stay queued)
  uint64_t written = 0;      // connection updates committed
  uint64_t dropped = 0;      // connection updates lost: the queue was full
};

struct ProcessMetrics {
  double cpu_seconds = 0; // user + system
  uint64_t rss_bytes = 0;
};

struct MetricsSnapshot {
  std::map<std::string, InterfaceTraffic> interfaces; // by name
  uint64_t flows = 0;
  uint64_t max_flows = 0;
  Counters counters{}; // the TC program's, summed over CPUs
  uint64_t events = 0; // ring-buffer events consumed
  std::map<std::string, uint64_t> open_by_state;
  // Final records delivered, by (state, close_reason).
  std::map<std::pair<std::string, std::string>, uint64_t> closed;
  std::optional<StoreMetrics> store;
  std::optional<uint64_t> jsonl_errors;              // when --jsonl is on
  std::optional<std::vector<CollectorStatus>> ipfix; // when --ipfix is on
  uint64_t ipfix_skipped = 0;
  ProcessMetrics process;
};

// The exposition text: # HELP and # TYPE for every family, counters ending
// in _total, label values escaped.
std::string format_metrics(const MetricsSnapshot &snapshot);

// CPU time and resident set of this process, from /proc/self/stat.
ProcessMetrics read_process_metrics();

// The HTTP endpoint. One request per connection, at most `max_request`
// bytes of request head, answered and closed; slow clients are cut off.
class MetricsServer {
public:
  using Source = std::function<std::string()>;

  // Binds at once (loopback for a bare port); throws Fatal when the address
  // is malformed or cannot be bound.
  MetricsServer(boost::asio::io_context &io, const std::string &listen, Source source);
  ~MetricsServer();
  MetricsServer(const MetricsServer &) = delete;
  MetricsServer &operator=(const MetricsServer &) = delete;

  void start();
  // Closes the listener and every open connection, so that the loop can end.
  void stop();

  boost::asio::ip::tcp::endpoint local_endpoint() const;
  uint64_t requests() const { return requests_; }

private:
  struct Connection;
  void accept();
  void serve(std::shared_ptr<Connection> connection);
  void respond(std::shared_ptr<Connection> connection);
  void linger(std::shared_ptr<Connection> connection);
  void close(const std::shared_ptr<Connection> &connection);
  void done(const std::shared_ptr<Connection> &connection);

  boost::asio::io_context &io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  Source source_;
  std::vector<std::shared_ptr<Connection>> connections_;
  uint64_t requests_ = 0;
};

} // namespace tcflows
