#include "sinks/ipfix_export.h"

#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <deque>

namespace tcflows {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using boost::system::error_code;

// A UDP message fits a 1500-byte MTU with IPv6 and UDP headers.
constexpr size_t udp_message_bytes = 1400;
constexpr size_t tcp_message_bytes = 16384;
// UDP collectors that start (or restart) after us learn the templates
// within this time (RFC 7011 §8.4).
constexpr auto template_refresh = 30s;
// Messages waiting for the socket beyond this are dropped and counted.
constexpr size_t max_queued_bytes = 8u << 20;
constexpr std::chrono::seconds min_backoff = 1s;
constexpr std::chrono::seconds max_backoff = 30s;

void sum_into(TrafficDelta &sum, const TrafficDelta &delta) {
  if (delta.from_ns && (!sum.from_ns || delta.from_ns < sum.from_ns))
    sum.from_ns = delta.from_ns;
  sum.to_ns = std::max(sum.to_ns, delta.to_ns);
  sum.orig_pkts += delta.orig_pkts;
  sum.orig_bytes += delta.orig_bytes;
  sum.resp_pkts += delta.resp_pkts;
  sum.resp_bytes += delta.resp_bytes;
}

bool has_traffic(const TrafficDelta &traffic) {
  return traffic.orig_pkts || traffic.resp_pkts || traffic.orig_bytes || traffic.resp_bytes;
}

asio::ip::address resolve(asio::io_context &io, const CollectorUrl &url) {
  error_code error;
  auto address = asio::ip::make_address(url.host, error);
  if (!error)
    return address;
  asio::ip::tcp::resolver resolver(io);
  auto results = resolver.resolve(url.host, std::to_string(url.port), error);
  if (error || results.empty())
    fail(exit_usage, "cannot resolve the IPFIX collector '{}': {}", url.text,
         error ? error.message() : "no address");
  return results.begin()->endpoint().address();
}

} // namespace

std::vector<ActiveTimeout::Due> ActiveTimeout::add(std::span<const ConnUpdate> updates) {
  std::vector<Due> due;
  for (const auto &update : updates) {
    auto [it, added] = open_.try_emplace(update.record.uid);
    Pending &pending = it->second;
    if (added)
      pending.since_ns = update.record.start_ns;
    pending.record = update.record;
    sum_into(pending.traffic, update.delta);
    if (update.final()) {
      due.push_back(
          {pending.record, pending.traffic, ipfix::end_reason(update.record.close_reason)});
      open_.erase(it);
    }
  }
  return due;
}

std::vector<ActiveTimeout::Due> ActiveTimeout::take(std::span<const ConnUpdate> updates,
                                                    uint64_t now_ns) {
  auto due = add(updates);
  auto more = expire(now_ns);
  due.insert(due.end(), more.begin(), more.end());
  return due;
}

std::vector<ActiveTimeout::Due> ActiveTimeout::expire(uint64_t now_ns) {
  std::vector<Due> due;
  for (auto &[uid, pending] : open_) {
    if (now_ns < pending.since_ns + period_ns_ || !has_traffic(pending.traffic))
      continue;
    due.push_back({pending.record, pending.traffic, ipfix::EndReason::active_timeout});
    pending.traffic = {};
    pending.since_ns = now_ns;
  }
  return due;
}

// One collector: its socket, its transport session and its send queue.
class Collector {
public:
  Collector(asio::io_context &io, CollectorUrl url, asio::ip::address address, uint32_t domain)
      : url_(std::move(url)), address_(address), udp_(io), tcp_(io), timer_(io),
        session_(domain, url_.tcp ? tcp_message_bytes : udp_message_bytes) {}

  void start() {
    if (url_.tcp)
      connect();
    else
      open_udp();
  }

  void send(std::span<const ipfix::EncodedRecord> records, uint64_t now_ns) {
    if (records.empty())
      return;
    bool ready = !finishing_ && (url_.tcp ? connected_ : open_udp());
    if (!ready) {
      counters_.records_failed += records.size();
      return;
    }
    auto now = std::chrono::steady_clock::now();
    bool templates = !url_.tcp && (templates_due_ || now - templates_at_ >= template_refresh);
    if (templates) {
      templates_due_ = false;
      templates_at_ = now;
    }
    for (auto &message : session_.pack(records, now_ns / 1'000'000'000, templates))
      enqueue(std::move(message));
    write_next();
  }

  void finish(std::chrono::milliseconds grace) {
    finishing_ = true;
    timer_.cancel();
    if (close_if_done())
      return;
    timer_.expires_after(grace);
    timer_.async_wait([this](const error_code &error) {
      if (!error)
        close();
    });
  }

  CollectorStatus status() const { return {url_.text, up_, counters_}; }

private:
  bool open_udp() {
    if (udp_.is_open())
      return true;
    error_code error;
    udp_.open(address_.is_v6() ? asio::ip::udp::v6() : asio::ip::udp::v4(), error);
    if (!error) // a UDP connect only sets the peer: it does not block
      udp_.connect({address_, url_.port}, error);
    if (error) {
      udp_.close();
      went_down(error);
      return false;
    }
    return true;
  }

  void connect() {
    error_code ignored;
    tcp_.close(ignored);
    tcp_.async_connect({address_, url_.port}, [this](const error_code &error) {
      if (error == asio::error::operation_aborted || finishing_)
        return;
      if (error) {
        went_down(error);
        retry();
        return;
      }
      connected_ = true;
      backoff_ = min_backoff;
      counters_.connects++;
      session_.restart(); // a new transport session
      went_up();
      enqueue(session_.templates_only(epoch_now_ns() / 1'000'000'000));
      write_next();
      watch_for_close();
    });
  }

  void retry() {
    timer_.expires_after(backoff_);
    backoff_ = std::min(backoff_ * 2, max_backoff);
    timer_.async_wait([this](const error_code &error) {
      if (!error && !finishing_)
        connect();
    });
  }

  // Collectors send nothing: a completed read is the end of the connection.
  void watch_for_close() {
    tcp_.async_read_some(asio::buffer(discard_), [this](const error_code &error, size_t) {
      if (error == asio::error::operation_aborted)
        return;
      if (!error)
        return watch_for_close();
      disconnected(error);
    });
  }

  void disconnected(const error_code &error) {
    if (!connected_)
      return;
    connected_ = false;
    went_down(error);
    error_code ignored;
    tcp_.close(ignored); // the write in flight, if any, completes as aborted
    while (queue_.size() > (writing_ ? 1u : 0u)) {
      count_failed(queue_.back());
      queued_bytes_ -= queue_.back().bytes.size();
      queue_.pop_back();
    }
    if (!finishing_)
      retry();
  }

  void enqueue(ipfix::Message message) {
    if (queued_bytes_ + message.bytes.size() > max_queued_bytes) {
      count_failed(message);
      templates_due_ = true; // the dropped message may have carried them
      return;
    }
    queued_bytes_ += message.bytes.size();
    queue_.push_back(std::move(message));
  }

  void write_next() {
    if (writing_ || queue_.empty())
      return;
    writing_ = true;
    auto done = [this](const error_code &error, size_t) { written(error); };
    if (url_.tcp)
      asio::async_write(tcp_, asio::buffer(queue_.front().bytes), done);
    else
      udp_.async_send(asio::buffer(queue_.front().bytes), done);
  }

  void written(const error_code &error) {
    writing_ = false;
    ipfix::Message message = std::move(queue_.front());
    queue_.pop_front();
    queued_bytes_ -= message.bytes.size();
    if (error) {
      // UDP: an ICMP unreachable for an earlier datagram fails this send.
      count_failed(message);
      templates_due_ = true;
      if (url_.tcp)
        disconnected(error);
      else
        went_down(error);
    } else {
      counters_.records_sent += message.records;
      counters_.messages_sent++;
      counters_.bytes_sent += message.bytes.size();
      went_up();
    }
    if (!url_.tcp || connected_)
      write_next();
    close_if_done();
  }

  void count_failed(const ipfix::Message &message) {
    counters_.records_failed += message.records;
    counters_.messages_failed++;
  }

  bool close_if_done() {
    if (!finishing_ || writing_ || !queue_.empty())
      return false;
    close();
    return true;
  }

  void close() {
    error_code ignored;
    timer_.cancel();
    udp_.close(ignored);
    tcp_.close(ignored);
    connected_ = false;
  }

  // Logged once per outage, not per message.
  void went_down(const error_code &error) {
    if (up_ || !warned_)
      log::warn("IPFIX collector {}: {}; records to it are counted as failed until it is back",
                url_.text, error.message());
    up_ = false;
    warned_ = true;
  }
  void went_up() {
    if (warned_ && !up_)
      log::info("IPFIX collector {}: sending again", url_.text);
    up_ = true;
  }

  CollectorUrl url_;
  asio::ip::address address_;
  asio::ip::udp::socket udp_;
  asio::ip::tcp::socket tcp_;
  asio::steady_timer timer_; // TCP reconnect backoff, then the finishing grace
  ipfix::Session session_;
  std::deque<ipfix::Message> queue_; // the front is being written
  size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool connected_ = false;
  bool finishing_ = false;
  bool templates_due_ = true;
  bool up_ = false;
  bool warned_ = false;
  std::chrono::steady_clock::time_point templates_at_;
  std::chrono::seconds backoff_ = min_backoff;
  char discard_[256];
  ExportCounters counters_;
};

IpfixExporter::IpfixExporter(asio::io_context &io, const std::vector<std::string> &urls,
                             std::chrono::nanoseconds active_timeout, uint32_t domain_id)
    : active_(active_timeout) {
  for (const auto &text : urls) {
    auto url = parse_collector_url(text);
    if (!url)
      fail(exit_usage, "'{}' is not an IPFIX collector like udp://HOST:PORT or tcp://HOST:PORT",
           text);
    auto address = resolve(io, *url);
    collectors_.push_back(std::make_unique<Collector>(io, std::move(*url), address, domain_id));
  }
}

IpfixExporter::~IpfixExporter() = default;

void IpfixExporter::start() {
  for (auto &collector : collectors_)
    collector->start();
}

void IpfixExporter::add(std::span<const ConnUpdate> updates, const InterfaceNames &names,
                        uint64_t now_ns) {
  send(active_.add(updates), names, now_ns);
}

void IpfixExporter::end(const InterfaceNames &names, uint64_t now_ns) {
  send(active_.expire(now_ns), names, now_ns);
}

void IpfixExporter::export_updates(std::span<const ConnUpdate> updates, const InterfaceNames &names,
                                   uint64_t now_ns) {
  add(updates, names, now_ns);
  end(names, now_ns);
}

void IpfixExporter::send(std::vector<ActiveTimeout::Due> due, const InterfaceNames &names,
                         uint64_t now_ns) {
  std::vector<ipfix::EncodedRecord> records;
  for (const auto &d : due) {
    auto flow =
        ipfix::flow_record(d.record, d.traffic, d.reason, names.name_of(d.record.ifindex()));
    if (!flow) {
      skipped_++;
      continue;
    }
    records.push_back(ipfix::encode(*flow));
  }
  for (auto &collector : collectors_)
    collector->send(records, now_ns);
}

void IpfixExporter::finish(std::chrono::milliseconds grace) {
  for (auto &collector : collectors_)
    collector->finish(grace);
}

std::vector<CollectorStatus> IpfixExporter::collectors() const {
  std::vector<CollectorStatus> list;
  for (const auto &collector : collectors_)
    list.push_back(collector->status());
  return list;
}

ExportCounters IpfixExporter::totals() const { return tcflows::totals(collectors()); }

ExportCounters totals(const std::vector<CollectorStatus> &collectors) {
  ExportCounters sum;
  for (const auto &collector : collectors) {
    const auto &c = collector.counters;
    sum.records_sent += c.records_sent;
    sum.records_failed += c.records_failed;
    sum.messages_sent += c.messages_sent;
    sum.messages_failed += c.messages_failed;
    sum.bytes_sent += c.bytes_sent;
    sum.connects += c.connects;
  }
  return sum;
}

} // namespace tcflows
