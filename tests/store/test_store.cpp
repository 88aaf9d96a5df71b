// The writer against real SQLite files: round trip, schema handling,
// retention, and writes that fail and are retried.
#include "helpers.h"
#include "sinks/schema.h"
#include "sinks/store.h"
#include "util/error.h"

#include <doctest/doctest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

using namespace tcflows;
using namespace tcflows::test;
using namespace std::chrono;

namespace {

constexpr uint64_t t0 = 1'764'090'000'000'000'000; // 2025-11-25T17:00:00Z
constexpr uint64_t sec = 1'000'000'000;

// The exit code of the Fatal that `open` throws, 0 when it opens.
template <typename F> int fatal_code(F open) {
  try {
    open();
  } catch (const Fatal &e) {
    MESSAGE(std::string(e.what()));
    return e.exit_code();
  }
  return 0;
}

int64_t traffic_sum(RawDb &db, const std::string &column) {
  return db.integer("SELECT total(" + column + ") FROM traffic");
}

} // namespace

TEST_CASE("a new database: file 0640, directories 0750, WAL, schema version, application id") {
  TempDir dir;
  auto path = dir.file("a/b/flows.db");
  { TestStore store(store_config(path)); }
  CHECK((stat_of(path).st_mode & 07777) == 0640);
  CHECK((stat_of(dir.file("a")).st_mode & 07777) == 0750);
  CHECK((stat_of(dir.file("a/b")).st_mode & 07777) == 0750);
  RawDb db(path);
  CHECK(db.text("PRAGMA journal_mode") == "wal");
  CHECK(db.integer("PRAGMA user_version") == migrations().back().version);
  CHECK(db.integer("PRAGMA application_id") == application_id);
  auto columns = db.rows("SELECT name FROM pragma_table_info('connections') ORDER BY cid");
  std::vector<std::string> names;
  for (const auto &row : columns)
    names.push_back(row[0]);
  for (const char *required :
       {"id", "iface", "proto", "src_addr", "src_port", "dst_addr", "dst_port", "start_ns",
        "end_ns", "orig_pkts", "orig_bytes", "resp_pkts", "resp_bytes", "state", "history",
        "close_reason", "rtt_ns", "uid"})
    CHECK_MESSAGE(std::find(names.begin(), names.end(), required) != names.end(), required);
}

TEST_CASE("round trip: a checkpoint, then the final record; deltas and counters") {
  TempDir dir;
  auto path = dir.file("flows.db");
  TestStore store(store_config(path));
  auto record = make_record("CAbc123", t0, t0 + 4 * sec);
  REQUIRE(store.write({make_update(record, t0, t0 + 5 * sec, 3, 180, 2, 3000)}, counters_with(10),
                      t0 + 5 * sec));
  {
    RawDb db(path, true);
    auto rows = db.rows("SELECT uid, iface, proto, src_addr, src_port, dst_addr, dst_port, vlan, "
                        "start_ns, end_ns, state, history, close_reason, rtt_ns, orig_guessed "
                        "FROM connections");
    REQUIRE(rows.size() == 1);
    CHECK(rows[0] == std::vector<std::string>{"CAbc123", "eth0", "TCP", "10.0.2.15", "41234",
                                              "192.0.2.1", "443", "7", std::to_string(t0),
                                              std::to_string(t0 + 4 * sec), "S1", "ShAD", "NULL",
                                              "1250000", "1"});
  }
  record.end_ns = t0 + 9 * sec;
  record.orig_pkts = 5;
  record.orig_bytes = 300;
  record.resp_pkts = 4;
  record.resp_bytes = 5000;
  record.state = "SF";
  record.history = "ShADFf";
  record.close_reason = "fin";
  record.rtt_ns.reset();
  REQUIRE(store.write({make_update(record, t0 + 5 * sec, t0 + 10 * sec, 2, 120, 2, 2000)},
                      counters_with(20), t0 + 10 * sec));
  RawDb db(path, true);
  CHECK(db.integer("SELECT count(*) FROM connections") == 1);
  auto rows = db.rows("SELECT end_ns, orig_pkts, orig_bytes, resp_pkts, resp_bytes, state, "
                      "history, close_reason, rtt_ns FROM connections WHERE uid = 'CAbc123'");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0] == std::vector<std::string>{std::to_string(t0 + 9 * sec), "5", "300", "4", "5000",
                                            "SF", "ShADFf", "fin", "NULL"});
  auto traffic = db.rows("SELECT from_ns, to_ns, orig_pkts, orig_bytes, resp_pkts, resp_bytes "
                         "FROM traffic ORDER BY to_ns");
  REQUIRE(traffic.size() == 2);
  CHECK(traffic[0] == std::vector<std::string>{std::to_string(t0), std::to_string(t0 + 5 * sec),
                                               "3", "180", "2", "3000"});
  CHECK(traffic[1] == std::vector<std::string>{std::to_string(t0 + 5 * sec),
                                               std::to_string(t0 + 10 * sec), "2", "120", "2",
                                               "2000"});
  // Every kernel counter and the store's own, once per interval.
  CHECK(db.integer("SELECT count(DISTINCT ts_ns) FROM counters") == 2);
  CHECK(db.integer("SELECT value FROM counters WHERE name = 'malformed' AND ts_ns = " +
                   std::to_string(t0 + 10 * sec)) == 20 + TCF_CTR_MALFORMED);
  CHECK(db.integer("SELECT count(*) FROM counters WHERE ts_ns = " + std::to_string(t0 + 5 * sec)) ==
        TCF_CTR_MAX + 5);
  CHECK(db.integer("SELECT value FROM counters WHERE name = 'store_written' AND ts_ns = " +
                   std::to_string(t0 + 10 * sec)) == 1);
  CHECK(store.stats().written == 2);
  CHECK(store.stats().write_errors == 0);
  // The views read.
  CHECK(db.text("SELECT start_utc FROM conn_log") == "2025-11-25T17:00:00.000Z");
  CHECK(db.integer("SELECT duration_ms FROM conn_log") == 9000);
  CHECK(db.integer("SELECT total_bytes FROM traffic_log WHERE to_utc = "
                   "'2025-11-25T17:00:10.000Z'") == 2120);
  CHECK(db.integer("SELECT total_bytes FROM host_totals WHERE host = '10.0.2.15'") == 5300);
  CHECK(db.integer("SELECT increase FROM counter_log WHERE name = 'frames' "
                   "AND ts_utc = '2025-11-25T17:00:10.000Z'") == 10);
}

TEST_CASE("a delta without traffic writes no traffic row; two at one instant add up") {
  TempDir dir;
  auto path = dir.file("flows.db");
  TestStore store(store_config(path));
  auto record = make_record("C1", t0, t0);
  REQUIRE(store.write({make_update(record, 0, 0, 0, 0, 0, 0)}, {}, t0 + sec));
  REQUIRE(store.write({make_update(record, t0, t0 + 5 * sec, 1, 10, 0, 0),
                       make_update(record, t0 + 2 * sec, t0 + 5 * sec, 2, 20, 1, 5)},
                      {}, t0 + 5 * sec));
  RawDb db(path, true);
  CHECK(db.integer("SELECT count(*) FROM traffic") == 1);
  CHECK(db.rows("SELECT from_ns, orig_pkts, orig_bytes, resp_pkts, resp_bytes FROM traffic") ==
        std::vector<std::vector<std::string>>{{std::to_string(t0), "3", "30", "1", "5"}});
}

TEST_CASE("a database from a newer tcflows is refused and left as it was") {
  TempDir dir;
  auto path = dir.file("flows.db");
  {
    TestStore store(store_config(path));
    store.write({make_update(make_record("C1", t0, t0), t0, t0 + sec, 1, 60, 1, 60)}, {}, t0 + sec);
  }
  {
    RawDb db(path);
    REQUIRE(db.exec("PRAGMA user_version = 99") == SQLITE_OK);
  }
  auto before = read_file(path);
  auto mtime = stat_of(path).st_mtim;
  usleep(20'000); // a write now would show in the mtime
  CHECK(fatal_code([&] { TestStore store(store_config(path)); }) == exit_usage);
  CHECK(fatal_code([&] { open_database_read_only(path); }) == exit_usage);
  CHECK(read_file(path) == before);
  CHECK(stat_of(path).st_mtim.tv_sec == mtime.tv_sec);
  CHECK(stat_of(path).st_mtim.tv_nsec == mtime.tv_nsec);
}

TEST_CASE("files that are not tcflows databases are refused and left as they were") {
  TempDir dir;
  SUBCASE("another application's SQLite database") {
    auto path = dir.file("other.db");
    {
      RawDb db(path);
      REQUIRE(db.exec("PRAGMA journal_mode = WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1)") ==
              SQLITE_OK);
    }
    auto before = read_file(path);
    CHECK(fatal_code([&] { TestStore store(store_config(path)); }) == exit_usage);
    CHECK(fatal_code([&] { open_database_read_only(path); }) == exit_usage);
    CHECK(read_file(path) == before);
  }
  SUBCASE("not SQLite at all") {
    auto path = dir.file("notes.txt");
    std::string text(8192, 'x');
    write_file(path, text);
    CHECK(fatal_code([&] { TestStore store(store_config(path)); }) == exit_usage);
    CHECK(fatal_code([&] { open_database_read_only(path); }) == exit_usage);
    CHECK(read_file(path) == text);
  }
  SUBCASE("a directory") {
    CHECK(fatal_code([&] { TestStore store(store_config(dir.path())); }) == exit_usage);
  }
  SUBCASE("missing, for reading") {
    CHECK(fatal_code([&] { open_database_read_only(dir.file("none.db")); }) == exit_usage);
    CHECK(!exists(dir.file("none.db")));
  }
}

TEST_CASE("an empty file becomes a database") {
  TempDir dir;
  auto path = dir.file("empty.db");
  write_file(path, "");
  { TestStore store(store_config(path)); }
  RawDb db(path, true);
  CHECK(db.integer("PRAGMA application_id") == application_id);
}

namespace {

// A version 1 database made by hand, with one connection in it.
void make_v1(const std::string &path) {
  RawDb db(path);
  REQUIRE(db.exec(std::string(migrations()[0].sql)) == SQLITE_OK);
  REQUIRE(db.exec("PRAGMA application_id = " + std::to_string(application_id) +
                  "; PRAGMA user_version = 1") == SQLITE_OK);
  REQUIRE(db.exec("INSERT INTO connections (uid, iface, proto, src_addr, src_port, dst_addr, "
                  "dst_port, start_ns, end_ns, orig_pkts, orig_bytes, resp_pkts, resp_bytes, "
                  "state, history) VALUES ('Cold', 'eth0', 'UDP', '10.0.0.1', 5353, "
                  "'10.0.0.2', 53, 1, 2, 1, 60, 1, 90, 'SF', 'Dd')") == SQLITE_OK);
}

const Migration test_v2[] = {
    migrations()[0],
    {2, "002_note.sql",
     "ALTER TABLE connections ADD COLUMN note TEXT;\n"
     "CREATE INDEX connections_note ON connections(note);\n"},
};

const Migration broken_v2[] = {
    migrations()[0],
    {2, "002_broken.sql",
     "ALTER TABLE connections ADD COLUMN note TEXT;\n"
     "CREATE TABLE connections (x);\n"}, // fails: the table exists
};

} // namespace

TEST_CASE("migrations: an older database is brought up to date, its data kept") {
  TempDir dir;
  auto path = dir.file("old.db");
  make_v1(path);
  {
    auto db = sql::Database::open(path, sql::Database::Mode::read_write);
    CHECK(migrate_database(db, test_v2) == 1);
  }
  RawDb db(path, true);
  CHECK(db.integer("PRAGMA user_version") == 2);
  CHECK(db.integer("SELECT count(*) FROM pragma_table_info('connections') WHERE name = 'note'") ==
        1);
  CHECK(db.integer("SELECT count(*) FROM connections WHERE uid = 'Cold'") == 1);
}

TEST_CASE("migrations: a failing migration changes nothing") {
  TempDir dir;
  auto path = dir.file("old.db");
  make_v1(path);
  {
    auto db = sql::Database::open(path, sql::Database::Mode::read_write);
    CHECK_THROWS_AS(migrate_database(db, broken_v2), sql::Error);
  }
  RawDb db(path, true);
  CHECK(db.integer("PRAGMA user_version") == 1);
  CHECK(db.integer("SELECT count(*) FROM pragma_table_info('connections') WHERE name = 'note'") ==
        0);
  CHECK(db.integer("SELECT count(*) FROM connections") == 1);
}

TEST_CASE("a current database made elsewhere is opened and its rows are updated by uid") {
  TempDir dir;
  auto path = dir.file("v1.db");
  make_v1(path);
  TestStore store(store_config(path));
  auto record = make_record("Cold", t0, t0 + sec);
  record.proto = "UDP";
  record.orig_bytes = 1000;
  REQUIRE(store.write({make_update(record, t0, t0 + sec, 1, 1000, 0, 0)}, {}, t0 + sec));
  RawDb db(path, true);
  CHECK(db.integer("SELECT count(*) FROM connections") == 1);
  CHECK(db.integer("SELECT orig_bytes FROM connections WHERE uid = 'Cold'") == 1000);
  CHECK(db.text("PRAGMA journal_mode") == "wal");
}

TEST_CASE("retention deletes older rows in bounded batches and keeps the rest") {
  TempDir dir;
  auto path = dir.file("flows.db");
  auto config = store_config(path);
  config.retention = hours(1);
  TestStore store(config);
  // 30 connections that ended two hours ago, 10 that are recent.
  for (int i = 0; i < 40; i++) {
    bool old = i < 30;
    uint64_t end = old ? t0 - 2 * 3600 * sec : t0 - 60 * sec;
    auto record = make_record("C" + std::to_string(i), end - sec, end);
    REQUIRE(store.write({make_update(record, end - 5 * sec, end, 1, 100, 1, 100)}, counters_with(i),
                        end + static_cast<uint64_t>(i)));
  }
  size_t total = 0, calls = 0;
  for (size_t n; (n = store.expire(t0, 25)) > 0; calls++) {
    CHECK(n <= 25);
    total += n;
  }
  // 30 connections, their 30 traffic rows and 30 counter rows of 22 counters.
  size_t counters_per_row = TCF_CTR_MAX + 5;
  CHECK(total == 30 + 30 + 30 * counters_per_row);
  CHECK(calls >= total / 25);
  CHECK(store.stats().expired == total);
  RawDb db(path, true);
  CHECK(db.integer("SELECT count(*) FROM connections") == 10);
  CHECK(db.integer("SELECT count(*) FROM connections WHERE end_ns < " +
                   std::to_string(t0 - 3600 * sec)) == 0);
  CHECK(db.integer("SELECT count(*) FROM traffic") == 10);
  CHECK(db.integer("SELECT count(DISTINCT ts_ns) FROM counters") == 10);
}

TEST_CASE("an open connection whose row retention deleted is written again in full") {
  TempDir dir;
  auto path = dir.file("flows.db");
  auto config = store_config(path);
  config.retention = minutes(1);
  TestStore store(config);
  auto r = make_record("Cquiet", t0, t0 + sec);
  r.orig_pkts = 1;
  REQUIRE(store.write({make_update(r, t0, t0 + 5 * sec, 1, 100, 0, 0)}, {}, t0 + 5 * sec));
  while (store.expire(t0 + 300 * sec) > 0) {
  }
  CHECK(RawDb(path, true).integer("SELECT count(*) FROM connections") == 0);
  r.end_ns = t0 + 301 * sec;
  r.orig_pkts = 2;
  REQUIRE(store.write({make_update(r, t0 + 5 * sec, t0 + 305 * sec, 1, 100, 0, 0)}, {},
                      t0 + 305 * sec));
  RawDb db(path, true);
  CHECK(db.integer("SELECT orig_pkts FROM connections WHERE uid = 'Cquiet'") == 2);
  CHECK(db.integer("SELECT count(*) FROM traffic") == 1);
}

TEST_CASE("no retention: expire deletes nothing") {
  TempDir dir;
  TestStore store(store_config(dir.file("flows.db")));
  auto record = make_record("C1", 1, 2);
  REQUIRE(store.write({make_update(record, 1, 5, 1, 1, 1, 1)}, {}, 5));
  CHECK(store.expire(t0) == 0);
}

TEST_CASE("a locked database: updates stay queued, merged, and are written once it frees") {
  TempDir dir;
  auto path = dir.file("flows.db");
  auto config = store_config(path);
  config.busy_timeout = milliseconds(50);
  TestStore store(config);
  auto a = make_record("Ca", t0, t0 + sec);
  auto b = make_record("Cb", t0, t0 + sec);
  RawDb other(path);
  REQUIRE(other.exec("BEGIN IMMEDIATE") == SQLITE_OK);
  CHECK_FALSE(store.write({make_update(a, t0, t0 + 5 * sec, 10, 1000, 5, 500)}, counters_with(1),
                          t0 + 5 * sec));
  a.end_ns = t0 + 8 * sec;
  CHECK_FALSE(store.write({make_update(a, t0 + 5 * sec, t0 + 10 * sec, 1, 100, 1, 50),
                           make_update(b, t0 + 5 * sec, t0 + 10 * sec, 2, 200, 0, 0)},
                          counters_with(2), t0 + 10 * sec));
  CHECK(store.stats().write_errors == 2);
  CHECK(store.stats().queued == 2);
  CHECK_FALSE(store.last_error().empty());
  REQUIRE(other.exec("ROLLBACK") == SQLITE_OK);
  a.close_reason = "fin";
  REQUIRE(store.write({make_update(a, t0 + 10 * sec, t0 + 15 * sec, 1, 40, 0, 0)}, counters_with(3),
                      t0 + 15 * sec));
  CHECK(store.stats().queued == 0);
  CHECK(store.stats().written == 2);
  CHECK(store.last_error().empty());
  RawDb db(path, true);
  CHECK(db.integer("SELECT count(*) FROM connections") == 2);
  CHECK(db.text("SELECT close_reason FROM connections WHERE uid = 'Ca'") == "fin");
  CHECK(db.integer("SELECT end_ns FROM connections WHERE uid = 'Ca'") == int64_t(t0 + 8 * sec));
  // Nothing lost: every delta is in, spread over fewer rows.
  CHECK(traffic_sum(db, "orig_pkts") == 10 + 1 + 2 + 1);
  CHECK(traffic_sum(db, "orig_bytes") == 1000 + 100 + 200 + 40);
  CHECK(traffic_sum(db, "resp_bytes") == 500 + 50);
  // The counters of all three intervals, the failures counted in them.
  CHECK(db.integer("SELECT count(DISTINCT ts_ns) FROM counters") == 3);
  CHECK(db.integer("SELECT value FROM counters WHERE name = 'store_write_errors' AND ts_ns = " +
                   std::to_string(t0 + 15 * sec)) == 2);
}

TEST_CASE("the queue is bounded: what does not fit is counted as dropped") {
  TempDir dir;
  auto path = dir.file("flows.db");
  auto config = store_config(path);
  config.busy_timeout = milliseconds(20);
  config.max_queued = 3;
  TestStore store(config);
  RawDb other(path);
  REQUIRE(other.exec("BEGIN IMMEDIATE") == SQLITE_OK);
  std::vector<ConnUpdate> updates;
  for (int i = 0; i < 5; i++)
    updates.push_back(
        make_update(make_record("C" + std::to_string(i), t0, t0), t0, t0 + sec, 1, 100, 0, 0));
  CHECK_FALSE(store.write(updates, {}, t0 + sec));
  CHECK(store.stats().queued == 3);
  CHECK(store.stats().dropped == 2);
  // A queued connection still merges; a new one is dropped.
  CHECK_FALSE(store.write(
      {updates[0], make_update(make_record("Cnew", t0, t0), t0, t0 + sec, 1, 100, 0, 0)}, {},
      t0 + 2 * sec));
  CHECK(store.stats().queued == 3);
  CHECK(store.stats().dropped == 3);
  CHECK(status_text(store.stats()) == "db written 0  queued 3  write errors 2  dropped 3");
  REQUIRE(other.exec("ROLLBACK") == SQLITE_OK);
  REQUIRE(store.write({}, {}, t0 + 3 * sec));
  RawDb db(path, true);
  CHECK(db.integer("SELECT count(*) FROM connections") == 3);
  CHECK(traffic_sum(db, "orig_pkts") == 4);
  CHECK(db.integer("SELECT value FROM counters WHERE name = 'store_dropped' AND ts_ns = " +
                   std::to_string(t0 + 3 * sec)) == 3);
}

TEST_CASE("the database file deleted under the store: a new one is written") {
  TempDir dir;
  auto path = dir.file("flows.db");
  TestStore store(store_config(path));
  auto a = make_record("Ca", t0, t0 + sec);
  REQUIRE(store.write({make_update(a, t0, t0 + 5 * sec, 1, 100, 0, 0)}, {}, t0 + 5 * sec));
  for (const char *suffix : {"", "-wal", "-shm"})
    ::unlink((path + suffix).c_str());
  auto b = make_record("Cb", t0, t0 + sec);
  // SQLite notices at the first write that the file moved; the retry opens
  // a new file. Either way nothing is lost and the failure is counted.
  bool first =
      store.write({make_update(b, t0 + 5 * sec, t0 + 10 * sec, 2, 200, 0, 0)}, {}, t0 + 10 * sec);
  CHECK_FALSE(first);
  CHECK(store.stats().write_errors == 1);
  REQUIRE(
      store.write({make_update(a, t0 + 10 * sec, t0 + 15 * sec, 3, 300, 0, 0)}, {}, t0 + 15 * sec));
  REQUIRE(exists(path));
  CHECK((stat_of(path).st_mode & 07777) == 0640);
  RawDb db(path, true);
  CHECK(db.integer("SELECT count(*) FROM connections") == 2);
  CHECK(traffic_sum(db, "orig_pkts") == 5);
}

TEST_CASE("a write that fails halfway commits nothing") {
  TempDir dir;
  auto path = dir.file("flows.db");
  TestStore store(store_config(path));
  {
    RawDb db(path);
    // Make the second connection's insert fail: a trigger refuses its uid.
    REQUIRE(db.exec("CREATE TRIGGER refuse BEFORE INSERT ON connections WHEN NEW.uid = 'Cbad' "
                    "BEGIN SELECT RAISE(ABORT, 'refused'); END") == SQLITE_OK);
  }
  auto good = make_record("Cgood", t0, t0 + sec);
  auto bad = make_record("Cbad", t0, t0 + sec);
  CHECK_FALSE(store.write(
      {make_update(good, t0, t0 + sec, 1, 100, 0, 0), make_update(bad, t0, t0 + sec, 1, 100, 0, 0)},
      {}, t0 + sec));
  {
    RawDb db(path, true);
    CHECK(db.integer("SELECT count(*) FROM connections") == 0);
    CHECK(db.integer("SELECT count(*) FROM traffic") == 0);
    CHECK(db.integer("SELECT count(*) FROM counters") == 0);
  }
  {
    RawDb db(path);
    REQUIRE(db.exec("DROP TRIGGER refuse") == SQLITE_OK);
  }
  REQUIRE(store.write({}, {}, t0 + 2 * sec));
  RawDb db(path, true);
  CHECK(db.integer("SELECT count(*) FROM connections") == 2);
  CHECK(traffic_sum(db, "orig_pkts") == 2);
  CHECK(db.integer("SELECT count(DISTINCT ts_ns) FROM counters") == 2);
}

TEST_CASE("migrations: a version 1 database opened by the store gets the later indexes") {
  TempDir dir;
  auto path = dir.file("v1.db");
  make_v1(path);
  { TestStore store(store_config(path)); }
  RawDb db(path, true);
  CHECK(db.integer("PRAGMA user_version") == 5);
  CHECK(db.integer("SELECT count(*) FROM sqlite_master WHERE name = 'connections_open'") == 1);
  CHECK(db.integer("SELECT count(*) FROM sqlite_master WHERE name = "
                   "'connections_community_id'") == 1);
  CHECK(db.integer("SELECT count(*) FROM connections WHERE uid = 'Cold'") == 1);
  // A record written before the column existed has none, also in the view.
  CHECK(db.integer("SELECT count(*) FROM conn_log WHERE community_id IS NULL") == 1);
  CHECK(db.integer("SELECT count(*) FROM conn_log WHERE orig_retx_pkts IS NULL") == 1);
  CHECK(db.integer("SELECT count(*) FROM conn_log WHERE pid IS NULL AND comm IS NULL AND "
                   "cgroup IS NULL") == 1);
}

TEST_CASE("open connections are handed to a restarted agent; stale ones are closed") {
  TempDir dir;
  auto path = dir.file("t.db");
  {
    TestStore store(store_config(path));
    auto open = make_record("Copen", 1000, 2000);
    open.close_reason.reset();
    auto stale = make_record("Cstale", 1000, 3000);
    stale.close_reason.reset();
    auto closed = make_record("Cclosed", 1000, 4000);
    closed.close_reason = "fin";
    REQUIRE(store.write({make_update(open, 1000, 2000, 3, 300, 2, 200),
                         make_update(stale, 1000, 3000, 1, 60, 0, 0),
                         make_update(closed, 1000, 4000, 5, 500, 5, 500)},
                        counters_with(0), 5000));
  }
  TestStore store(store_config(path)); // the restarted agent's
  auto open = store.open_connections();
  REQUIRE(open.size() == 2);
  std::sort(open.begin(), open.end(), [](auto &a, auto &b) { return a.uid < b.uid; });
  CHECK(open[0].uid.view() == "Copen");
  CHECK(open[0].orig_pkts == make_record("Copen", 1000, 2000).orig_pkts);
  CHECK(open[0].checkpoint_ns == 2000);
  CHECK(open[1].uid.view() == "Cstale");
  // A slot whose final record was written but not given back is not written again.
  CHECK(store.is_final(*Uid::from("Cclosed")));
  CHECK(!store.is_final(*Uid::from("Copen")));
  CHECK(!store.is_final(*Uid::from("Cnever")));

  store.close_stale({*Uid::from("Cstale")});
  REQUIRE(store.write({}, counters_with(0), 6000));
  RawDb db(path, true);
  CHECK(db.text("SELECT close_reason FROM connections WHERE uid = 'Cstale'") == "shutdown");
  CHECK(db.text("SELECT close_reason FROM connections WHERE uid = 'Copen'") == std::nullopt);
  CHECK(db.text("SELECT close_reason FROM connections WHERE uid = 'Cclosed'") == "fin");
  CHECK(store.open_connections().size() == 1);
}
