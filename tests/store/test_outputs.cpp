// The outputs behind one interface, against a real SQLite file and a real
// JSON lines file: an interval handed over in chunks, the store's one
// transaction per interval, and the sequence number of what is durable.
#include "helpers.h"
#include "sinks/outputs.h"

#include <doctest/doctest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <sqlite3.h>

#include <chrono>
#include <sstream>

using namespace tcflows;
using namespace tcflows::test;

namespace {

constexpr uint64_t t0 = 1'764'090'000'000'000'000; // 2025-11-25T17:00:00Z
constexpr uint64_t sec = 1'000'000'000;

// Runs the loop until `done` (at most 5 s); returns whether it came. The
// loop waits for what the store's thread posts to it.
template <typename Done> bool run_until(boost::asio::io_context &io, Done done) {
  auto work = boost::asio::make_work_guard(io);
  for (int i = 0; i < 500 && !done(); i++) {
    io.restart();
    io.run_for(std::chrono::milliseconds(10));
  }
  return done();
}

std::vector<std::string> lines_of(const std::string &path) {
  std::vector<std::string> lines;
  std::istringstream in(read_file(path));
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

ConnUpdate closed(const std::string &uid, uint64_t pkts) {
  auto r = make_record(uid, t0, t0 + sec);
  r.state = "SF";
  r.close_reason = "fin";
  return make_update(r, t0, t0 + 5 * sec, pkts, pkts * 100, 1, 60);
}

ConnUpdate open(const std::string &uid) {
  return make_update(make_record(uid, t0, t0 + sec), t0, t0 + 5 * sec, 2, 200, 0, 0);
}

} // namespace

TEST_CASE("an interval in chunks: JSONL at once, the database at its end, then durable") {
  TempDir dir;
  boost::asio::io_context io;
  OutputsConfig config;
  config.jsonl = dir.file("records.jsonl");
  config.store = store_config(dir.file("t.db"));
  Outputs outputs(io, config);
  std::vector<uint64_t> durable;
  outputs.on_durable([&](uint64_t sequence) { durable.push_back(sequence); });
  std::vector<ConnUpdate> first = {closed("Ca", 3), open("Cb")}, second = {closed("Cc", 5)};
  auto names = interfaces();

  outputs.begin(t0 + 5 * sec, names);
  outputs.add(first);
  outputs.add({});
  outputs.add(second);
  // JSON lines are written chunk by chunk; nothing of the interval is in the
  // database before its end.
  auto lines = lines_of(config.jsonl);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] == conn_json(first[0], *names));
  CHECK(lines[2] == conn_json(second[0], *names));
  CHECK(RawDb(config.store->path, true).integer("SELECT count(*) FROM connections") == 0);
  CHECK(outputs.durable() == 0);

  Counters counters = counters_with(1);
  CHECK(outputs.end(&counters) == 1);
  REQUIRE(run_until(io, [&] { return !durable.empty(); }));
  CHECK(durable == std::vector<uint64_t>{1});
  CHECK(outputs.durable() == 1);
  RawDb db(config.store->path, true);
  CHECK(db.integer("SELECT count(*) FROM connections") == 3);
  CHECK(db.integer("SELECT count(*) FROM connections WHERE close_reason = 'fin'") == 2);
  CHECK(db.text("SELECT iface FROM connections WHERE uid = 'Cc'") == "eth0");
  // One counters row per interval, whatever its chunks.
  CHECK(db.integer("SELECT count(DISTINCT ts_ns) FROM counters") == 1);
  CHECK(db.integer("SELECT count(*) FROM counters") == TCF_CTR_MAX + 5);

  // What was delivered, for the statistics: finals by state and reason, the
  // traffic per interface (the originator's packets leave at egress).
  Stats stats;
  outputs.add_to(stats);
  CHECK(stats.closed[{ConnState::SF, CloseReason::fin}] == 2);
  CHECK(stats.interfaces["eth0"].pkts[1] == 3 + 2 + 5);
  CHECK(stats.interfaces["eth0"].pkts[0] == 1 + 1);
  REQUIRE(stats.store);
  CHECK(stats.store->written == 3);
  CHECK(stats.jsonl_errors == 0);
  CHECK_FALSE(stats.ipfix);
}

TEST_CASE("writes that fail: durable stays behind, and catches up with the next commit") {
  TempDir dir;
  boost::asio::io_context io;
  OutputsConfig config;
  config.store = store_config(dir.file("t.db"));
  config.store->busy_timeout = std::chrono::milliseconds(20);
  Outputs outputs(io, config);
  RawDb other(config.store->path);
  REQUIRE(other.exec("BEGIN IMMEDIATE") == SQLITE_OK);

  CHECK(outputs.deliver({closed("Ca", 1)}, t0 + 5 * sec, interfaces(), {}) == 1);
  auto failures = [&] {
    Stats stats;
    outputs.add_to(stats);
    return stats.store->write_errors;
  };
  REQUIRE(run_until(io, [&] { return failures() == 1; }));
  CHECK(outputs.durable() == 0);
  Stats stats;
  outputs.add_to(stats);
  CHECK(stats.store->queued == 1);

  REQUIRE(other.exec("ROLLBACK") == SQLITE_OK);
  CHECK(outputs.deliver({closed("Cb", 1)}, t0 + 10 * sec, interfaces(), {}) == 2);
  REQUIRE(run_until(io, [&] { return outputs.durable() == 2; }));
  CHECK(RawDb(config.store->path, true).integer("SELECT count(*) FROM connections") == 2);
}

TEST_CASE("without a database every ended interval is durable") {
  TempDir dir;
  boost::asio::io_context io;
  OutputsConfig config;
  config.jsonl = dir.file("records.jsonl");
  Outputs outputs(io, config);
  uint64_t durable = 0;
  outputs.on_durable([&](uint64_t sequence) { durable = sequence; });
  CHECK_FALSE(outputs.has_store());
  CHECK(outputs.take_open_connections().empty());
  CHECK(outputs.deliver({open("Ca")}, t0 + 5 * sec, interfaces(), {}) == 1);
  CHECK(outputs.deliver({}, t0 + 10 * sec, interfaces(), {}) == 2);
  CHECK(outputs.durable() == 2);
  REQUIRE(run_until(io, [&] { return durable == 2; }));
  CHECK(lines_of(config.jsonl).size() == 1);
}
