// The built tcflows binary (path in $TCFLOWS): exit codes, one-line errors,
// and a report that reads without changing the database.
#include "helpers.h"
#include "sinks/store.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <thread>

using namespace tcflows;
using namespace tcflows::test;

namespace {

constexpr uint64_t sec = 1'000'000'000;
constexpr uint64_t t0 = 1'764'090'000 * sec; // 2025-11-25T17:00:00Z

struct Run {
  int status = -1;
  std::string out, err;
};

// Runs tcflows with `args` in `cwd`, output to files there.
Run run_tcflows(const std::vector<std::string> &args, const std::string &cwd) {
  const char *env = std::getenv("TCFLOWS");
  REQUIRE_MESSAGE(env, "TCFLOWS must name the tcflows binary (meson test sets it)");
  char *binary = realpath(env, nullptr); // the child changes directory
  REQUIRE(binary);
  std::string out = cwd + "/.out", err = cwd + "/.err";
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0 || chdir(cwd.c_str()) != 0)
      _exit(127);
    std::vector<char *> argv{binary};
    for (const auto &arg : args)
      argv.push_back(const_cast<char *>(arg.c_str()));
    argv.push_back(nullptr);
    execv(binary, argv.data());
    _exit(127);
  }
  free(binary);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  Run run;
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  run.out = read_file(out);
  run.err = read_file(err);
  ::unlink(out.c_str());
  ::unlink(err.c_str());
  return run;
}

void write_sample(const std::string &path, int connections) {
  TestStore store(store_config(path));
  std::vector<ConnUpdate> updates;
  for (int i = 0; i < connections; i++) {
    auto r = make_record("C" + std::to_string(i), t0, t0 + sec);
    r.src_addr = "2001:db8::15"; // IPv6 both ways, for --host in IPv6 spellings
    r.dst_addr = "2001:db8::1";
    r.src_port = static_cast<uint16_t>(30000 + i);
    updates.push_back(make_update(r, t0, t0 + 5 * sec, 1 + i, 100 * (i + 1), i, 50 * i));
  }
  REQUIRE(store.write(updates, {}, t0 + 5 * sec));
}

// What a reader must not change: the database file (bytes and mtime) and
// what the WAL holds (a reader may create an empty WAL where there was none).
// The -shm file is SQLite's shared-memory index, which every reader writes to.
std::vector<std::string> fingerprint(const std::string &path) {
  auto st = stat_of(path);
  auto wal = path + "-wal";
  return {read_file(path) + " mtime " + std::to_string(st.st_mtim.tv_sec) + "." +
              std::to_string(st.st_mtim.tv_nsec),
          exists(wal) ? read_file(wal) : ""};
}

void check_same(const std::vector<std::string> &now, const std::vector<std::string> &before) {
  CHECK_MESSAGE(now[0] == before[0], "the database file changed");
  CHECK_MESSAGE(now[1] == before[1], "the WAL changed");
}

void check_usage_error(const Run &run, const std::string &what) {
  CAPTURE(what);
  CAPTURE(run.err);
  CHECK(run.status == 2);
  CHECK(run.out.empty());
  CHECK(run.err.starts_with("tcflows: error: "));
  CHECK(std::count(run.err.begin(), run.err.end(), '\n') == 1);
  CHECK(run.err.back() == '\n');
}

} // namespace

TEST_CASE("report: every bad value is a one-line error with exit code 2") {
  TempDir dir;
  write_sample(dir.file("good.db"), 3);
  const std::vector<std::vector<std::string>> bad = {
      {"--by", "flows"},
      {"--by", ""},
      {"--sort", "size"},
      {"--format", "xml"},
      {"--since", "yesterday"},
      {"--since", "2026-02-30T00:00:00Z"},
      {"--since", "2026-11-25T17:00:00+25:00"},
      {"--until", "25:00"},
      {"--since", "1h", "--until", "2h"},
      {"--since", "2026-11-25T18:00:00Z", "--until", "2026-11-25T17:00:00Z"},
      {"--proto", "tcpp"},
      {"--proto", "256"},
      {"--host", "300.1.1.1"},
      {"--host", "10.0.0.1:80"},
      {"--host", "02:00:00:00:00"},
      {"--port", "70000"},
      {"--port", "-1"},
      {"--port", "http"},
      {"--top", "0"},
      {"--top", "ten"},
      {"--iface", ""},
      {"--iface", "an-interface-name-too-long"},
      {"--sort", "start"},
      {"--by", "host", "--sort", "duration"},
      {"--frobnicate"},
      {"extra"},
  };
  for (auto args : bad) {
    std::string what;
    for (const auto &a : args)
      what += a + " ";
    args.insert(args.begin(), {"report", "--db", "good.db"});
    check_usage_error(run_tcflows(args, dir.path()), what);
  }
}

TEST_CASE("record: bad store options are refused before anything is written") {
  TempDir dir;
  for (const auto &args : std::vector<std::vector<std::string>>{
           {"record", "--retention", "0s"},
           {"record", "--retention", "week"},
           {"record", "--retention", ""},
           {"record", "--no-db", "--db", "x.db"},
           {"record", "--no-db", "--retention", "7d"},
           {"record", "--db"},
       }) {
    check_usage_error(run_tcflows(args, dir.path()), args.back());
    CHECK(!exists(dir.file("tcflows.db")));
    CHECK(!exists(dir.file("x.db")));
  }
}

TEST_CASE("report: databases it cannot read are refused with exit code 2, unchanged") {
  TempDir dir;
  write_sample(dir.file("newer.db"), 3);
  {
    RawDb db(dir.file("newer.db"));
    REQUIRE(db.exec("PRAGMA user_version = 7") == SQLITE_OK);
  }
  {
    RawDb db(dir.file("other.db"));
    REQUIRE(db.exec("CREATE TABLE connections (id INTEGER)") == SQLITE_OK);
  }
  write_file(dir.file("text.db"), std::string(10000, 'x'));
  write_file(dir.file("empty.db"), "");
  // A real database whose pages past the first are overwritten.
  write_sample(dir.file("corrupt.db"), 3000);
  {
    auto data = read_file(dir.file("corrupt.db"));
    REQUIRE(data.size() > 16 * 4096);
    std::fill(data.begin() + 2 * 4096, data.end() - 4096, '\xab');
    write_file(dir.file("corrupt.db"), data);
  }
  for (const char *name :
       {"newer.db", "other.db", "text.db", "empty.db", "corrupt.db", "missing.db", "."}) {
    bool file = std::filesystem::is_regular_file(dir.file(name));
    auto before = file ? fingerprint(dir.file(name)) : std::vector<std::string>{};
    for (const char *by : {"flow", "conn"}) {
      auto run = run_tcflows({"report", "--db", name, "--by", by, "--since", "1000w"}, dir.path());
      check_usage_error(run, name);
    }
    if (!before.empty())
      check_same(fingerprint(dir.file(name)), before);
  }
  CHECK(!exists(dir.file("missing.db")));
}

TEST_CASE("report: reads, and leaves the database as it was") {
  TempDir dir;
  auto path = dir.file("good.db");
  write_sample(path, 20);
  auto before = fingerprint(path);
  auto run = run_tcflows({"report", "--db", "good.db", "--since", "2025-11-25T16:00:00Z",
                          "--format", "json", "--by", "proto"},
                         dir.path());
  CHECK(run.status == 0);
  CHECK(run.err.empty());
  auto json = nlohmann::json::parse(run.out);
  REQUIRE(json.size() == 1);
  // 20 connections: packets 1..20 and 0..19, bytes 100..2000 and 0..950.
  CHECK(json[0]["proto"] == "TCP");
  CHECK(json[0]["connections"] == 20);
  CHECK(json[0]["packets"] == 210 + 190);
  CHECK(json[0]["bytes"] == 21000 + 9500);
  // The same window with an offset and without a zone.
  for (const char *since : {"2025-11-25T17:00:00+01:00", "2025-11-25T16:00:00"}) {
    auto same = run_tcflows(
        {"report", "--db", "good.db", "--since", since, "--format", "json", "--by", "proto"},
        dir.path());
    CHECK(same.out == run.out);
  }
  // --until alone: the hour before it.
  auto until = run_tcflows({"report", "--db", "good.db", "--until", "2025-11-25T17:30:00Z",
                            "--format", "json", "--by", "proto"},
                           dir.path());
  CHECK(until.out == run.out);
  auto before_traffic = run_tcflows(
      {"report", "--db", "good.db", "--until", "2025-11-25T17:00:04Z", "--format", "json"},
      dir.path());
  CHECK(before_traffic.status == 0);
  CHECK(before_traffic.out == "[]\n");
  // A window after the traffic: nothing, still exit 0.
  auto later = run_tcflows(
      {"report", "--db", "good.db", "--since", "2025-11-25T17:00:05Z", "--format", "json"},
      dir.path());
  CHECK(later.status == 0);
  CHECK(later.out == "[]\n");
  auto table = run_tcflows({"report", "--db", "good.db", "--since", "1000w", "--by", "conn",
                            "--host", "2001:DB8:0::1", "--port", "30005"},
                           dir.path());
  CHECK(table.status == 0);
  CHECK(table.out.starts_with("PROTOCOL"));
  CHECK(std::count(table.out.begin(), table.out.end(), '\n') == 2); // header, one connection
  CHECK(table.out.find("[2001:db8::15]:30005") != std::string::npos);
  check_same(fingerprint(path), before);
}

TEST_CASE("report reads while the store writes") {
  TempDir dir;
  auto path = dir.file("live.db");
  TestStore store(store_config(path));
  auto r = make_record("Clive", t0, t0 + sec);
  for (int k = 1; k <= 5; k++) {
    REQUIRE(store.write({make_update(r, t0 + (k - 1) * 5 * sec, t0 + k * 5 * sec, 1, 100, 0, 0)},
                        {}, t0 + k * 5 * sec));
    auto run = run_tcflows(
        {"report", "--db", "live.db", "--since", "1000w", "--format", "csv", "--by", "proto"},
        dir.path());
    CHECK(run.status == 0);
    CHECK(run.out == "proto,connections,packets,bytes\nTCP,1," + std::to_string(k) + "," +
                         std::to_string(100 * k) + "\n");
  }
}

TEST_CASE("report in a loop while the store writes: no error, whole intervals, nothing lost") {
  TempDir dir;
  auto path = dir.file("busy.db");
  constexpr int intervals = 40, per_interval = 2000;
  TestStore store(store_config(path));
  std::atomic<int> failed_writes = 0;
  std::atomic<bool> done = false;
  std::thread writer([&] {
    for (int k = 1; k <= intervals; k++) {
      std::vector<ConnUpdate> updates;
      for (int i = 0; i < per_interval; i++) {
        auto r = make_record("C" + std::to_string(i), t0, t0 + k * 5 * sec);
        r.src_port = static_cast<uint16_t>(20000 + i);
        updates.push_back(make_update(r, t0 + (k - 1) * 5 * sec, t0 + k * 5 * sec, 1, 100, 0, 0));
      }
      if (!store.write(updates, {}, t0 + k * 5 * sec))
        failed_writes++;
    }
    done = true;
  });
  int reports = 0;
  int64_t last = 0;
  while (!done) {
    auto run = run_tcflows(
        {"report", "--db", "busy.db", "--since", "1000w", "--by", "proto", "--format", "json"},
        dir.path());
    CHECK(run.status == 0);
    CHECK(run.err.empty());
    auto json = nlohmann::json::parse(run.out);
    int64_t packets = json.empty() ? 0 : json[0]["packets"].get<int64_t>();
    CHECK(packets % per_interval == 0); // a whole number of intervals: never half a write
    CHECK(packets >= last);
    last = packets;
    reports++;
  }
  writer.join();
  CHECK(failed_writes == 0);
  CHECK(store.stats().write_errors == 0);
  CHECK(reports > 1);
  MESSAGE("reports while writing: " << reports);
  auto run = run_tcflows(
      {"report", "--db", "busy.db", "--since", "1000w", "--by", "proto", "--format", "json"},
      dir.path());
  CHECK(nlohmann::json::parse(run.out)[0]["packets"] == intervals * per_interval);
}
