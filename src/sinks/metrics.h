// `record --metrics ADDR:PORT`: the agent's numbers in the Prometheus text
// exposition format (version 0.0.4), served by a minimal HTTP/1.1 handler of
// GET /metrics on the agent's Asio loop.
#pragma once

#include "sinks/stats.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace tcflows {

// The exposition text: # HELP and # TYPE for every family, counters ending
// in _total, label values escaped.
std::string format_metrics(const Stats &stats);

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
