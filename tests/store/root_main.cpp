// Store tests that need root: a full disk (a small tmpfs in a private mount
// namespace), a read-only database (files made immutable), and report run as
// another user (nobody). Exits 77 (skipped) when not root.
#define DOCTEST_CONFIG_IMPLEMENT
#include "helpers.h"
#include "report/report.h"
#include "sinks/store.h"
#include "util/error.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/fs.h>
#include <pwd.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

using namespace tcflows;
using namespace tcflows::test;

namespace {

constexpr uint64_t sec = 1'000'000'000;
constexpr uint64_t t0 = 1'764'090'000 * sec;

std::vector<ConnUpdate> batch(int first, int count, uint64_t to_ns) {
  std::vector<ConnUpdate> updates;
  for (int i = first; i < first + count; i++)
    updates.push_back(make_update(make_record("C" + std::to_string(i), t0, to_ns - 1),
                                  to_ns - 5 * sec, to_ns, 2, 1000, 1, 500));
  return updates;
}

// A tmpfs of `size` mounted on a fresh directory, unmounted at the end.
class SmallDisk {
public:
  explicit SmallDisk(const char *size) {
    REQUIRE(mount("tcflows-test", dir_.path().c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
                  (std::string("size=") + size + ",mode=0700").c_str()) == 0);
  }
  ~SmallDisk() { umount2(dir_.path().c_str(), MNT_DETACH); }
  std::string file(const std::string &name) const { return dir_.file(name); }

private:
  TempDir dir_;
};

// Writes into `path` until the file system is full; returns the bytes written.
size_t fill(const std::string &path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  REQUIRE(fd >= 0);
  std::string block(4096, 'f');
  size_t total = 0;
  for (ssize_t n; (n = ::write(fd, block.data(), block.size())) > 0;)
    total += static_cast<size_t>(n);
  CHECK(errno == ENOSPC);
  ::close(fd);
  return total;
}

bool set_immutable(const std::string &path, bool on) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  int flags = 0;
  bool ok = ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
  flags = on ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL;
  ok = ok && ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
  ::close(fd);
  return ok;
}

// The database's files made immutable (even root cannot write them) until
// the end of the scope.
class Immutable {
public:
  explicit Immutable(const std::string &path) : files_{path, path + "-wal"} {
    for (const auto &file : files_)
      if (!set_immutable(file, true)) {
        std::string error = file + ": " + std::strerror(errno);
        release();
        FAIL(error);
      }
  }
  ~Immutable() { release(); }
  void release() {
    for (const auto &file : files_)
      set_immutable(file, false);
  }

private:
  std::vector<std::string> files_;
};

int64_t count(const std::string &path, const std::string &sql) {
  RawDb db(path, true);
  return db.integer(sql);
}

} // namespace

TEST_CASE("disk full: the interval stays queued, is counted, and is written once there is room") {
  SmallDisk disk("1m");
  auto path = disk.file("flows.db");
  TestStore store(store_config(path));
  REQUIRE(store.write(batch(0, 100, t0 + 5 * sec), counters_with(1), t0 + 5 * sec));
  fill(disk.file("filler"));
  // Large enough to need new pages: the disk has none left.
  CHECK_FALSE(store.write(batch(100, 3000, t0 + 10 * sec), counters_with(2), t0 + 10 * sec));
  CHECK_FALSE(store.write(batch(3100, 100, t0 + 15 * sec), counters_with(3), t0 + 15 * sec));
  CHECK(store.stats().write_errors == 2);
  CHECK(store.stats().queued == 3100);
  CHECK(store.stats().dropped == 0);
  MESSAGE(store.last_error());
  // What was committed before is still there.
  CHECK(count(path, "SELECT count(*) FROM connections") == 100);
  ::unlink(disk.file("filler").c_str());
  REQUIRE(store.write(batch(3200, 10, t0 + 20 * sec), counters_with(4), t0 + 20 * sec));
  CHECK(store.stats().queued == 0);
  CHECK(count(path, "SELECT count(*) FROM connections") == 3210);
  CHECK(count(path, "SELECT total(orig_bytes) FROM traffic") == 3210 * 1000);
  CHECK(count(path, "SELECT count(DISTINCT ts_ns) FROM counters") == 4);
}

TEST_CASE("read-only database: updates stay queued until it can be written again") {
  TempDir dir;
  auto path = dir.file("flows.db");
  TestStore store(store_config(path));
  REQUIRE(store.write(batch(0, 10, t0 + 5 * sec), {}, t0 + 5 * sec));
  {
    Immutable frozen(path);
    CHECK_FALSE(store.write(batch(10, 10, t0 + 10 * sec), {}, t0 + 10 * sec));
    // The retry opens the file afresh, read-only this time: still refused.
    CHECK_FALSE(store.write(batch(20, 10, t0 + 15 * sec), {}, t0 + 15 * sec));
    CHECK(store.stats().write_errors == 2);
    CHECK(store.stats().queued == 20);
    MESSAGE(store.last_error());
  }
  REQUIRE(store.write({}, {}, t0 + 20 * sec));
  CHECK(count(path, "SELECT count(*) FROM connections") == 30);
  CHECK(count(path, "SELECT total(orig_pkts) FROM traffic") == 60);
}

namespace {

// Runs `report --by proto --format json` on `path` as nobody:nogroup in a
// child process; returns its output, or "failed: ..." .
std::string report_as_nobody(const std::string &path) {
  const passwd *nobody = getpwnam("nobody");
  const group *nogroup = getgrnam("nogroup");
  REQUIRE(nobody);
  REQUIRE(nogroup);
  int pipe_fds[2];
  REQUIRE(pipe(pipe_fds) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(pipe_fds[0]);
    std::string out;
    if (setgroups(0, nullptr) != 0 || setgid(nogroup->gr_gid) != 0 || setuid(nobody->pw_uid) != 0) {
      out = "failed: cannot become nobody";
    } else {
      try {
        ReportOptions o;
        o.db = path;
        o.by = ReportBy::proto;
        o.format = ReportFormat::json;
        auto db = open_database_read_only(path);
        out = make_report(db, o);
      } catch (const Fatal &e) {
        out = "failed (exit " + std::to_string(e.exit_code()) + "): " + e.what();
      } catch (const std::exception &e) {
        out = std::string("failed: ") + e.what();
      }
    }
    (void)!::write(pipe_fds[1], out.data(), out.size());
    _exit(0);
  }
  ::close(pipe_fds[1]);
  std::string out;
  char buffer[4096];
  for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof(buffer))) > 0;)
    out.append(buffer, static_cast<size_t>(n));
  ::close(pipe_fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return out;
}

// The directory and the database's files: group nogroup, which may read them
// and nothing else (the directory 0750, the files 0640 as the store made them).
void share_with_nogroup(const std::string &dir, const std::string &path) {
  gid_t gid = getgrnam("nogroup")->gr_gid;
  REQUIRE(::chown(dir.c_str(), 0, gid) == 0);
  REQUIRE(::chmod(dir.c_str(), 0750) == 0);
  for (const char *suffix : {"", "-wal", "-shm"})
    if (exists(path + suffix))
      REQUIRE(::chown((path + suffix).c_str(), 0, gid) == 0);
}

} // namespace

TEST_CASE("report reads with the caller's rights, while the store writes and after") {
  TempDir dir;
  REQUIRE(::chmod(dir.path().c_str(), 0755) == 0); // /tmp/ts-store-*: reachable
  auto sub = dir.file("db");
  auto path = sub + "/flows.db";
  const std::string expected = R"([{"proto":"TCP","connections":20,"packets":60,"bytes":30000}])"
                               "\n";
  {
    TestStore store(store_config(path));
    REQUIRE(store.write(batch(0, 20, t0 + 5 * sec), {}, t0 + 5 * sec));
    share_with_nogroup(sub, path);
    CHECK(report_as_nobody(path) == expected); // the agent running
  }
  CHECK(report_as_nobody(path) == expected); // the agent stopped
  // Without its -wal and -shm files (copied elsewhere, say), in a directory
  // nobody may not write: read as an immutable file.
  ::unlink((path + "-wal").c_str());
  ::unlink((path + "-shm").c_str());
  CHECK(report_as_nobody(path) == expected);
  CHECK(!exists(path + "-wal"));
}

TEST_CASE("report refuses a database the caller may not read: exit 2, one line") {
  TempDir dir;
  REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
  auto path = dir.file("private.db");
  {
    TestStore store(store_config(path));
    REQUIRE(store.write(batch(0, 3, t0 + 5 * sec), {}, t0 + 5 * sec));
  }
  // root:root 0640, as the store made it: nobody may not read it.
  CHECK(report_as_nobody(path) == "failed (exit 2): cannot read " + path + ": Permission denied");
}

int main(int argc, char **argv) {
  if (geteuid() != 0) {
    std::fputs("store_root_tests: needs root (mounts a tmpfs, sets immutable flags)\n", stderr);
    return 77;
  }
  // A private mount namespace: the test's tmpfs is seen by nobody else and
  // goes away with the process.
  if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr)) {
    std::fprintf(stderr, "store_root_tests: private mount namespace: %s\n", std::strerror(errno));
    return 1;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
