// `record --ipfix udp://HOST:PORT | tcp://HOST:PORT`: connection records to
// IPFIX collectors from the Asio loop, never blocking it. Failures (collector
// down, ICMP unreachable, TCP disconnect, a full send queue) are counted per
// collector; recording goes on and TCP reconnects with backoff.
#pragma once

#include "sinks/interfaces.h"
#include "sinks/ipfix.h"
#include "track/conn.h"
#include "util/net_address.h"

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tcflows {

struct ExportCounters {
  uint64_t records_sent = 0;   // data records in messages the kernel took
  uint64_t records_failed = 0; // data records in messages that could not be sent
  uint64_t messages_sent = 0;
  uint64_t messages_failed = 0;
  uint64_t bytes_sent = 0;
  uint64_t connects = 0; // TCP connections established
};

struct CollectorStatus {
  std::string url;
  bool up = false; // TCP: connected; UDP: the last send succeeded
  ExportCounters counters;
};

// The counters of all collectors summed.
ExportCounters totals(const std::vector<CollectorStatus> &collectors);

// Which traffic of the connections goes out when (pure, no sockets). A
// final update goes out at once with all of its traffic not yet exported;
// the traffic of an open connection accumulates and goes out as a delta
// record (flowEndReason active timeout) once `period` has passed since the
// connection started or since its last export.
class ActiveTimeout {
public:
  struct Due {
    ConnRecord record;
    TrafficDelta traffic;
    ipfix::EndReason reason;
  };

  explicit ActiveTimeout(std::chrono::nanoseconds period) : period_ns_(period.count()) {}

  // Takes updates in; returns the final ones, due at once.
  std::vector<Due> add(std::span<const ConnUpdate> updates);
  // The open connections whose period is over at `now_ns` (Unix epoch ns).
  std::vector<Due> expire(uint64_t now_ns);
  // add() and expire() at once: one interval's updates.
  std::vector<Due> take(std::span<const ConnUpdate> updates, uint64_t now_ns);
  size_t open() const { return open_.size(); }

private:
  struct Pending {
    ConnRecord record;
    TrafficDelta traffic;
    uint64_t since_ns = 0;
  };
  uint64_t period_ns_;
  std::unordered_map<Uid, Pending, UidHash> open_;
};

class Collector;

class IpfixExporter {
public:
  // Resolves the collectors' addresses (before the loop runs); throws Fatal
  // (usage) for a URL that is malformed or whose host does not resolve.
  IpfixExporter(boost::asio::io_context &io, const std::vector<std::string> &urls,
                std::chrono::nanoseconds active_timeout, uint32_t domain_id = 1);
  ~IpfixExporter();
  IpfixExporter(const IpfixExporter &) = delete;
  IpfixExporter &operator=(const IpfixExporter &) = delete;

  // Opens the sockets; TCP collectors connect in the background.
  void start();

  // An interval's updates, in any number of chunks: the final ones go out at
  // once. `names` name the records' interfaces; `now_ns`: Unix epoch ns.
  void add(std::span<const ConnUpdate> updates, const InterfaceNames &names, uint64_t now_ns);
  // The interval's end: what the active timeout makes due goes out.
  void end(const InterfaceNames &names, uint64_t now_ns);
  // Both for one interval's updates.
  void export_updates(std::span<const ConnUpdate> updates, const InterfaceNames &names,
                      uint64_t now_ns);

  // At shutdown, after the last export: sends what is queued (at most
  // `grace`), then closes, so that the loop can end.
  void finish(std::chrono::milliseconds grace = std::chrono::milliseconds(2000));

  std::vector<CollectorStatus> collectors() const;
  ExportCounters totals() const;
  // Records no template can carry (link-layer flows), per collector none sent.
  uint64_t records_skipped() const { return skipped_; }

private:
  void send(std::vector<ActiveTimeout::Due> due, const InterfaceNames &names, uint64_t now_ns);

  ActiveTimeout active_;
  std::vector<std::unique_ptr<Collector>> collectors_;
  uint64_t skipped_ = 0;
};

} // namespace tcflows
