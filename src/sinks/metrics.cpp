#include "sinks/metrics.h"

#include "util/error.h"
#include "util/log.h"
#include "util/net_address.h"

#include <unistd.h>

#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <sstream>

namespace tcflows {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;

constexpr size_t max_request = 8192;
constexpr size_t max_connections = 16;
constexpr auto request_timeout = 5s;

std::string escape_label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

using Labels = std::vector<std::pair<std::string_view, std::string>>;

// The text of one scrape, family by family.
class Exposition {
public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    name_ = name;
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  template <typename Value> void sample(const Labels &labels, Value value) {
    out_ += name_;
    if (!labels.empty()) {
      out_ += '{';
      for (size_t i = 0; i < labels.size(); i++)
        out_ += fmt::format("{}{}=\"{}\"", i ? "," : "", labels[i].first,
                            escape_label(labels[i].second));
      out_ += '}';
    }
    out_ += fmt::format(" {}\n", value);
  }
  template <typename Value>
  void single(std::string_view name, std::string_view type, std::string_view help, Value value) {
    family(name, type, help);
    sample({}, value);
  }
  std::string take() { return std::move(out_); }

private:
  std::string out_;
  std::string name_;
};

void interface_metrics(Exposition &e, const Stats &s) {
  static constexpr std::string_view directions[3] = {"in", "out", "unknown"};
  auto samples = [&](auto member) {
    for (const auto &[iface, traffic] : s.interfaces)
      for (int d = 0; d < 3; d++)
        if (d < 2 || (traffic.*member)[d]) // "unknown" only when there is some
          e.sample({{"iface", iface}, {"direction", std::string(directions[d])}},
                   (traffic.*member)[d]);
  };
  e.family("tcflows_interface_packets_total", "counter",
           "Wire packets counted in flows, per interface and direction (in: TC ingress, out: TC "
           "egress).");
  samples(&InterfaceTraffic::pkts);
  e.family("tcflows_interface_bytes_total", "counter",
           "IP-level bytes counted in flows, per interface and direction.");
  samples(&InterfaceTraffic::bytes);
}

void counter_metrics(Exposition &e, const Stats &s) {
  for (const auto &counter : agent_counters)
    e.single(counter.metric, counter.type, counter.help, counter.value(s));
  for (const auto &counter : kernel_counters)
    e.single(fmt::format("tcflows_kernel_{}_total", counter.name), "counter", counter.help,
             s.counters[counter.id]);
}

void connection_metrics(Exposition &e, const Stats &s) {
  uint64_t open = 0, closed = 0;
  e.family("tcflows_connections_open", "gauge", "Open connections by Zeek conn_state.");
  for (const auto &[state, count] : s.open_by_state) {
    e.sample({{"state", std::string(state_name(state))}}, count);
    open += count;
  }
  e.family("tcflows_connections_closed_total", "counter",
           "Connections whose final record was produced, by conn_state and close_reason.");
  for (const auto &[key, count] : s.closed) {
    e.sample({{"state", std::string(state_name(key.first))},
              {"reason", std::string(close_reason_name(key.second))}},
             count);
    closed += count;
  }
  e.single("tcflows_connections_opened_total", "counter",
           "Connections seen since the agent started (open and closed).", open + closed);
}

void sink_metrics(Exposition &e, const Stats &s) {
  if (s.store)
    for (const auto &counter : store_counters)
      e.single(counter.metric, counter.type, counter.help, (*s.store).*counter.value);
  if (s.jsonl_errors)
    e.single("tcflows_jsonl_write_errors_total", "counter", "--jsonl writes that failed.",
             *s.jsonl_errors);
  if (!s.ipfix)
    return;
  struct Family {
    std::string_view name, type, help;
    uint64_t (*value)(const CollectorStatus &);
  };
  static constexpr Family families[] = {
      {"tcflows_ipfix_records_sent_total", "counter", "IPFIX data records sent, per collector.",
       [](const CollectorStatus &c) { return c.counters.records_sent; }},
      {"tcflows_ipfix_records_failed_total", "counter",
       "IPFIX data records that could not be sent (collector down or unreachable, queue full).",
       [](const CollectorStatus &c) { return c.counters.records_failed; }},
      {"tcflows_ipfix_messages_sent_total", "counter", "IPFIX messages sent, per collector.",
       [](const CollectorStatus &c) { return c.counters.messages_sent; }},
      {"tcflows_ipfix_messages_failed_total", "counter", "IPFIX messages that failed to send.",
       [](const CollectorStatus &c) { return c.counters.messages_failed; }},
      {"tcflows_ipfix_bytes_sent_total", "counter", "IPFIX message bytes sent, per collector.",
       [](const CollectorStatus &c) { return c.counters.bytes_sent; }},
      {"tcflows_ipfix_connects_total", "counter", "TCP connections made to the collector.",
       [](const CollectorStatus &c) { return c.counters.connects; }},
      {"tcflows_ipfix_collector_up", "gauge",
       "1 when the collector's TCP connection is up or its last UDP send succeeded.",
       [](const CollectorStatus &c) { return uint64_t{c.up}; }},
  };
  for (const auto &family : families) {
    e.family(family.name, family.type, family.help);
    for (const auto &collector : *s.ipfix)
      e.sample({{"collector", collector.url}}, family.value(collector));
  }
  e.single("tcflows_ipfix_records_skipped_total", "counter",
           "Records no IPFIX template carries (link-layer flows).", s.ipfix_skipped);
}

} // namespace

std::string format_metrics(const Stats &s) {
  Exposition e;
  interface_metrics(e, s);
  counter_metrics(e, s);
  connection_metrics(e, s);
  sink_metrics(e, s);
  e.single("tcflows_sweep_duration_seconds", "gauge",
           "How long the last sweep of the connection table took.", s.sweep_us / 1e6);
  e.single("process_cpu_seconds_total", "counter", "User and system CPU time of the agent.",
           s.process.cpu_seconds);
  e.single("process_resident_memory_bytes", "gauge", "Resident memory of the agent.",
           s.process.rss_bytes);
  return e.take();
}

ProcessMetrics read_process_metrics() {
  ProcessMetrics metrics;
  std::ifstream file("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  // Fields after the command name, which is in parentheses and may hold spaces.
  size_t paren = text.rfind(')');
  if (paren == std::string::npos)
    return metrics;
  std::istringstream fields(text.substr(paren + 2));
  std::vector<std::string> field;
  for (std::string word; fields >> word && field.size() < 22;)
    field.push_back(word);
  if (field.size() < 22)
    return metrics;
  // Field 3 (state) is field[0]: utime is field 14, stime 15, rss 24.
  double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  metrics.cpu_seconds = (std::stod(field[11]) + std::stod(field[12])) / ticks;
  metrics.rss_bytes = std::stoull(field[21]) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  return metrics;
}

struct MetricsServer::Connection {
  explicit Connection(asio::io_context &io) : socket(io), timer(io) {}
  asio::ip::tcp::socket socket;
  asio::steady_timer timer;
  std::string request;
  std::string response;
  std::array<char, 1024> discard;
};

namespace {

asio::ip::tcp::endpoint listen_endpoint(asio::io_context &io, const std::string &text) {
  auto parsed = parse_listen_address(text);
  if (!parsed)
    fail(exit_usage, "--metrics '{}' is not PORT or ADDR:PORT (e.g. 9469, 0.0.0.0:9469)", text);
  auto [host, port] = *parsed;
  if (host.empty())
    return {asio::ip::address_v4::loopback(), port};
  error_code error;
  auto address = asio::ip::make_address(host, error);
  if (!error)
    return {address, port};
  asio::ip::tcp::resolver resolver(io);
  auto results = resolver.resolve(host, std::to_string(port), error);
  if (error || results.empty())
    fail(exit_usage, "--metrics: cannot resolve '{}': {}", host,
         error ? error.message() : "no address");
  return results.begin()->endpoint();
}

std::string endpoint_text(const asio::ip::tcp::endpoint &endpoint) {
  auto address = endpoint.address();
  if (address.is_v6())
    return fmt::format("[{}]:{}", address.to_string(), endpoint.port());
  return fmt::format("{}:{}", address.to_string(), endpoint.port());
}

std::string http_response(std::string_view status, std::string_view type, std::string_view body,
                          bool head, std::string_view extra = {}) {
  return fmt::format("HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}"
                     "Connection: close\r\n\r\n{}",
                     status, type, body.size(), extra, head ? "" : body);
}

} // namespace

MetricsServer::MetricsServer(asio::io_context &io, const std::string &listen, Source source)
    : io_(io), acceptor_(io), source_(std::move(source)) {
  auto endpoint = listen_endpoint(io, listen);
  error_code error;
  acceptor_.open(endpoint.protocol(), error);
  if (!error)
    acceptor_.set_option(asio::socket_base::reuse_address(true), error);
  if (!error)
    acceptor_.bind(endpoint, error);
  if (!error)
    acceptor_.listen(asio::socket_base::max_listen_connections, error);
  if (error)
    fail(exit_failure, "cannot serve --metrics on {}: {}; choose another address or port", listen,
         error.message());
}

MetricsServer::~MetricsServer() = default;

asio::ip::tcp::endpoint MetricsServer::local_endpoint() const {
  error_code error;
  return acceptor_.local_endpoint(error);
}

void MetricsServer::start() {
  log::info("metrics on http://{}/metrics", endpoint_text(local_endpoint()));
  accept();
}

void MetricsServer::stop() {
  error_code ignored;
  acceptor_.close(ignored);
  for (auto &connection : connections_) {
    connection->socket.close(ignored);
    connection->timer.cancel();
  }
  connections_.clear();
}

void MetricsServer::accept() {
  auto connection = std::make_shared<Connection>(io_);
  acceptor_.async_accept(connection->socket, [this, connection](const error_code &error) {
    if (error == asio::error::operation_aborted || !acceptor_.is_open())
      return;
    if (!error) {
      if (connections_.size() < max_connections)
        serve(connection);
      else
        connection->socket.close(); // too many at once: the client retries
    }
    accept();
  });
}

void MetricsServer::serve(std::shared_ptr<Connection> connection) {
  connections_.push_back(connection);
  connection->timer.expires_after(request_timeout);
  connection->timer.async_wait([connection](const error_code &error) {
    if (!error) {
      error_code ignored;
      connection->socket.close(ignored);
    }
  });
  asio::async_read_until(connection->socket, asio::dynamic_buffer(connection->request, max_request),
                         "\r\n\r\n", [this, connection](const error_code &error, size_t) {
                           if (error == asio::error::operation_aborted)
                             return done(connection);
                           if (error && error != asio::error::not_found)
                             return done(connection);
                           if (error) // the head did not fit in max_request bytes
                             connection->request.clear();
                           respond(connection);
                         });
}

void MetricsServer::respond(std::shared_ptr<Connection> connection) {
  requests_++;
  std::string_view request = connection->request;
  std::string_view line = request.substr(0, request.find("\r\n"));
  size_t space = line.find(' ');
  std::string_view method = line.substr(0, space);
  std::string_view target = space == std::string_view::npos
                                ? ""
                                : line.substr(space + 1, line.find(' ', space + 1) - space - 1);
  target = target.substr(0, target.find('?'));
  bool head = method == "HEAD";
  std::string &out = connection->response;
  if (request.empty() || space == std::string_view::npos)
    out = http_response("400 Bad Request", "text/plain", "bad request\n", false);
  else if (method != "GET" && !head)
    out = http_response("405 Method Not Allowed", "text/plain", "only GET\n", false,
                        "Allow: GET, HEAD\r\n");
  else if (target != "/metrics")
    out = http_response("404 Not Found", "text/plain", "see /metrics\n", head);
  else
    out = http_response("200 OK", "text/plain; version=0.0.4; charset=utf-8", source_(), head);
  asio::async_write(connection->socket, asio::buffer(out),
                    [this, connection](const error_code &error, size_t) {
                      if (error)
                        return close(connection);
                      error_code ignored;
                      connection->socket.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
                      linger(connection);
                    });
}

// Closing with unread request bytes would reset the connection and could
// destroy the response before the client reads it: read and drop them
// until the client closes (or the request timeout does).
void MetricsServer::linger(std::shared_ptr<Connection> connection) {
  connection->socket.async_read_some(asio::buffer(connection->discard),
                                     [this, connection](const error_code &error, size_t) {
                                       if (!error)
                                         return linger(connection);
                                       close(connection);
                                     });
}

void MetricsServer::close(const std::shared_ptr<Connection> &connection) {
  error_code ignored;
  connection->socket.close(ignored);
  done(connection);
}

void MetricsServer::done(const std::shared_ptr<Connection> &connection) {
  connection->timer.cancel();
  std::erase(connections_, connection);
}

} // namespace tcflows
