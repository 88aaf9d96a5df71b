// The Prometheus exposition: its text format (checked by promtool and by a
// strict parser here) and the HTTP endpoint on a real loopback socket.
#include "sinks/metrics.h"

#include <doctest/doctest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>

using namespace tcflows;
namespace asio = boost::asio;

namespace {

Stats sample_snapshot() {
  Stats s;
  s.interfaces["veth0"] = {{10, 20, 0}, {1000, 2000, 0}};
  s.interfaces["we\"ird\\if\n"] = {{1, 2, 3}, {4, 5, 6}};
  s.flows = 3;
  s.max_flows = 65536;
  for (int i = 0; i < TCF_CTR_MAX; i++)
    s.counters[i] = 100 + i;
  s.doorbells = 77;
  s.open_by_state = {{ConnState::S1, 2}, {ConnState::OTH, 1}};
  s.closed = {{{ConnState::SF, CloseReason::fin}, 5}, {{ConnState::REJ, CloseReason::rst}, 1}};
  s.store = StoreStats{.queued = 4, .write_errors = 1};
  s.jsonl_errors = 0;
  CollectorStatus up{"udp://127.0.0.1:4739", true, {}};
  up.counters.records_sent = 12;
  up.counters.records_failed = 2;
  s.ipfix = std::vector<CollectorStatus>{up, {"tcp://[::1]:4739", false, {}}};
  s.ipfix_skipped = 1;
  s.process = {1.25, 1 << 20};
  return s;
}

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  std::string value;
};

// A strict reader of the text format 0.0.4: every sample follows the
// # HELP and # TYPE of its family, label values are well escaped. Throws on
// anything else.
std::vector<Sample> parse_exposition(const std::string &text,
                                     std::map<std::string, std::string> &types) {
  static const std::regex help(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+)");
  static const std::regex type(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge))");
  static const std::regex sample(R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.e+]+))");
  static const std::regex label(R"re(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$))re");
  std::vector<Sample> samples;
  std::string family, helped;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_match(line, m, help)) {
      if (types.count(m[1]))
        throw std::runtime_error("family twice: " + line);
      helped = m[1];
    } else if (std::regex_match(line, m, type)) {
      if (m[1] != helped)
        throw std::runtime_error("TYPE without HELP: " + line);
      family = m[1];
      types[family] = m[2];
    } else if (std::regex_match(line, m, sample)) {
      if (m[1] != family)
        throw std::runtime_error("sample outside its family: " + line);
      Sample s{m[1], {}, m[4]};
      std::string labels = m[3];
      for (std::sregex_iterator it(labels.begin(), labels.end(), label), end; it != end; ++it)
        s.labels[(*it)[1]] = (*it)[2];
      samples.push_back(s);
    } else {
      throw std::runtime_error("not exposition format: " + line);
    }
  }
  return samples;
}

std::string value_of(const std::vector<Sample> &samples, const std::string &name,
                     const std::map<std::string, std::string> &labels = {}) {
  for (const auto &s : samples)
    if (s.name == name && s.labels == labels)
      return s.value;
  return "absent";
}

} // namespace

TEST_CASE("exposition text: families, types, _total counters, escaped labels") {
  std::string text = format_metrics(sample_snapshot());
  std::map<std::string, std::string> types;
  auto samples = parse_exposition(text, types);
  for (const auto &[name, type] : types)
    CHECK_MESSAGE((type == "counter") == name.ends_with("_total"), name);
  CHECK(value_of(samples, "tcflows_interface_packets_total",
                 {{"iface", "veth0"}, {"direction", "in"}}) == "10");
  CHECK(value_of(samples, "tcflows_interface_bytes_total",
                 {{"iface", "veth0"}, {"direction", "out"}}) == "2000");
  CHECK(value_of(samples, "tcflows_interface_packets_total",
                 {{"iface", "veth0"}, {"direction", "unknown"}}) == "absent");
  CHECK(value_of(samples, "tcflows_interface_packets_total",
                 {{"iface", R"(we\"ird\\if\n)"}, {"direction", "unknown"}}) == "3");
  CHECK(value_of(samples, "tcflows_flows_max") == "65536");
  CHECK(value_of(samples, "tcflows_kernel_malformed_total") ==
        std::to_string(100 + TCF_CTR_MALFORMED));
  CHECK(value_of(samples, "tcflows_kernel_doorbells_lost_total") ==
        std::to_string(100 + TCF_CTR_DOORBELLS_LOST));
  CHECK(value_of(samples, "tcflows_connections_open", {{"state", "S1"}}) == "2");
  CHECK(value_of(samples, "tcflows_connections_closed_total",
                 {{"state", "SF"}, {"reason", "fin"}}) == "5");
  CHECK(value_of(samples, "tcflows_connections_opened_total") == "9");
  CHECK(value_of(samples, "tcflows_store_queue_depth") == "4");
  CHECK(value_of(samples, "tcflows_ipfix_records_sent_total",
                 {{"collector", "udp://127.0.0.1:4739"}}) == "12");
  CHECK(value_of(samples, "tcflows_ipfix_records_failed_total",
                 {{"collector", "udp://127.0.0.1:4739"}}) == "2");
  CHECK(value_of(samples, "tcflows_ipfix_collector_up", {{"collector", "tcp://[::1]:4739"}}) ==
        "0");
  CHECK(value_of(samples, "process_cpu_seconds_total") == "1.25");
  CHECK(value_of(samples, "process_resident_memory_bytes") == "1048576");

  Stats bare;
  types.clear();
  auto few = parse_exposition(format_metrics(bare), types);
  CHECK(types.count("tcflows_ipfix_records_sent_total") == 0);
  CHECK(types.count("tcflows_store_queue_depth") == 0);
}

TEST_CASE("promtool check metrics accepts the exposition") {
  auto path = std::filesystem::temp_directory_path() /
              ("tcflows-metrics-" + std::to_string(getpid()) + ".txt");
  std::ofstream(path) << format_metrics(sample_snapshot());
  std::string command = "promtool check metrics < " + path.string() + " 2>&1";
  std::unique_ptr<FILE, int (*)(FILE *)> pipe(::popen(command.c_str(), "r"), ::pclose);
  REQUIRE(pipe);
  std::string output;
  char buffer[1024];
  while (size_t n = std::fread(buffer, 1, sizeof(buffer), pipe.get()))
    output.append(buffer, n);
  int status = ::pclose(pipe.release());
  std::filesystem::remove(path);
  INFO("promtool (Debian package prometheus) said: " << output);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(output.empty()); // lint findings are printed even with status 0
}

TEST_CASE("process metrics come from /proc/self") {
  auto p = read_process_metrics();
  CHECK(p.rss_bytes > 1 << 20);
  CHECK(p.cpu_seconds >= 0);
}

namespace {

// A free loopback port, for a server that is then bound to it.
uint16_t free_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor probe(io, {asio::ip::address_v4::loopback(), 0});
  return probe.local_endpoint().port();
}

// Sends `request` from another thread while the loop serves; returns the
// whole response (the server closes the connection).
std::string exchange(asio::io_context &io, uint16_t port, const std::string &request) {
  auto client = std::async(std::launch::async, [port, request] {
    asio::io_context client_io;
    asio::ip::tcp::socket socket(client_io);
    socket.connect({asio::ip::address_v4::loopback(), port});
    asio::write(socket, asio::buffer(request));
    std::string response;
    boost::system::error_code error;
    asio::read(socket, asio::dynamic_buffer(response), error);
    return response;
  });
  while (client.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready)
    io.run_for(std::chrono::milliseconds(10));
  return client.get();
}

} // namespace

TEST_CASE("HTTP: GET /metrics, 404, 405, oversized requests, stop") {
  asio::io_context io;
  uint16_t port = free_port();
  int scrapes = 0;
  MetricsServer server(io, std::to_string(port), [&] {
    scrapes++;
    return std::string("# HELP x X.\n# TYPE x gauge\nx 1\n");
  });
  CHECK(server.local_endpoint().address().is_loopback());
  server.start();

  auto ok = exchange(io, port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(ok.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(ok.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
  CHECK(ok.find("Content-Length: 31\r\n") != std::string::npos);
  CHECK(ok.ends_with("\r\n\r\n# HELP x X.\n# TYPE x gauge\nx 1\n"));
  CHECK(scrapes == 1);

  CHECK(exchange(io, port, "GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
  CHECK(exchange(io, port, "POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
  CHECK(exchange(io, port, std::string(20000, 'A')).starts_with("HTTP/1.1 400"));
  auto head = exchange(io, port, "HEAD /metrics HTTP/1.0\r\n\r\n");
  CHECK(head.starts_with("HTTP/1.1 200"));
  CHECK(head.ends_with("\r\n\r\n"));
  CHECK(scrapes == 2);
  CHECK(server.requests() == 5);

  server.stop();
  io.run_for(std::chrono::milliseconds(50));
  CHECK(io.stopped()); // nothing of the server keeps the loop alive
}
