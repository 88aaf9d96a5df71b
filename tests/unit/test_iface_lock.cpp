// InterfaceLock in a temporary directory: the refusal names the holder, a
// start that fails leaves the lock files as they were, and the file names
// the network namespace.
#include "attach/iface_lock.h"
#include "util/error.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace tcflows;
namespace fs = std::filesystem;

namespace {

struct LockDir {
  LockDir() : path(fs::temp_directory_path() / ("tcflows-lock-" + std::to_string(::getpid()))) {
    fs::create_directories(path);
  }
  ~LockDir() { fs::remove_all(path); }
  std::string file(const std::string &iface) const { return path / lock_file_name(iface); }
  fs::path path;
};

std::string read(const std::string &path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

} // namespace

TEST_CASE("InterfaceLock: a second lock is refused, naming the holder's pid") {
  LockDir dir;
  InterfaceLock first("eth0", dir.path);
  first.claim();
  CHECK(read(dir.file("eth0")) == std::to_string(::getpid()) + "\n");
  try {
    InterfaceLock second("eth0", dir.path);
    FAIL("the second lock was granted");
  } catch (const Fatal &e) {
    CHECK(std::string(e.what()) == "another tcflows record (pid " + std::to_string(::getpid()) +
                                       ") is recording on eth0: stop it first");
  }
  CHECK(read(dir.file("eth0")) == std::to_string(::getpid()) + "\n");
}

TEST_CASE("InterfaceLock: never claimed, it removes the file it made") {
  LockDir dir;
  {
    InterfaceLock lock("eth1", dir.path);
    CHECK(fs::exists(dir.file("eth1")));
  }
  CHECK(!fs::exists(dir.file("eth1")));
}

TEST_CASE("InterfaceLock: never claimed, it leaves a file it found as it was") {
  LockDir dir;
  const std::string left = "4242\nqdisc-created\n"; // a killed agent's
  std::ofstream(dir.file("eth2")) << left;
  {
    InterfaceLock lock("eth2", dir.path);
    CHECK(lock.qdisc_created());
  }
  CHECK(read(dir.file("eth2")) == left);
}

TEST_CASE("InterfaceLock: claimed, it keeps the qdisc mark; released, the file goes") {
  LockDir dir;
  std::ofstream(dir.file("eth3")) << "4242\nqdisc-created\n";
  {
    InterfaceLock lock("eth3", dir.path);
    lock.claim();
    CHECK(read(dir.file("eth3")) == std::to_string(::getpid()) + "\nqdisc-created\n");
    lock.release();
    CHECK(!fs::exists(dir.file("eth3")));
  }
  CHECK(!fs::exists(dir.file("eth3")));
}

TEST_CASE("InterfaceLock: the file is named by the network namespace and the interface") {
  struct stat ns {};
  REQUIRE(::stat("/proc/self/ns/net", &ns) == 0);
  CHECK(lock_file_name("eth0") == "net" + std::to_string(ns.st_ino) + ".eth0.lock");
  LockDir dir;
  InterfaceLock lock("eth0", dir.path);
  CHECK(lock.path() == dir.path / ("net" + std::to_string(ns.st_ino) + ".eth0.lock"));
}
