// Store tests that need root: a full disk (a small tmpfs in a private mount
// namespace) and a read-only database (files made immutable). Exits 77
// (skipped) when not root.
#define DOCTEST_CONFIG_IMPLEMENT
#include "helpers.h"
#include "store.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
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
  Store store(store_config(path));
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
  Store store(store_config(path));
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
