#include "agent/cgroup.h"
#include "keys.h"
#include "track/owner_cache.h"
#include "track/process.h"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

using namespace tcflows;

namespace {

// A key of the owners map written out by hand: IPv4, local endpoint first.
tcf_proc_key proc_v4(const char *local, uint16_t lport, const char *remote, uint16_t rport,
                     uint8_t proto) {
  tcf_proc_key k{};
  if (local)
    inet_pton(AF_INET, local, &k.local[0]);
  if (remote)
    inet_pton(AF_INET, remote, &k.remote[0]);
  k.local_port = lport;
  k.remote_port = rport;
  k.ethertype = ETH_P_IP;
  k.proto = proto;
  return k;
}

// An unconnected socket's key bound to the any address: of either family.
tcf_proc_key any_family(tcf_proc_key k) {
  k.ethertype = 0;
  return k;
}

bool same(const tcf_proc_key &a, const tcf_proc_key &b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

} // namespace

TEST_CASE("owner keys: TCP, each endpoint as the local one, the originator first") {
  // Side 1 is the originator (the client at 10.0.0.9:50000).
  auto key = fake::v4("10.0.0.1", 443, "10.0.0.9", 50000, IPPROTO_TCP);
  auto keys = owner_keys(key, 1);
  REQUIRE(keys.size() == 2);
  CHECK(same(keys[0], proc_v4("10.0.0.9", 50000, "10.0.0.1", 443, IPPROTO_TCP)));
  CHECK(same(keys[1], proc_v4("10.0.0.1", 443, "10.0.0.9", 50000, IPPROTO_TCP)));
}

TEST_CASE("owner keys: UDP adds the unconnected socket's, local address as seen, then any") {
  auto key = fake::v4("10.0.0.2", 53, "10.0.0.5", 41000, IPPROTO_UDP);
  auto keys = owner_keys(key, 1);
  REQUIRE(keys.size() == 6);
  CHECK(same(keys[0], proc_v4("10.0.0.5", 41000, "10.0.0.2", 53, IPPROTO_UDP)));
  CHECK(same(keys[1], proc_v4("10.0.0.5", 41000, nullptr, 0, IPPROTO_UDP)));
  CHECK(same(keys[2], any_family(proc_v4(nullptr, 41000, nullptr, 0, IPPROTO_UDP))));
  CHECK(same(keys[3], proc_v4("10.0.0.2", 53, "10.0.0.5", 41000, IPPROTO_UDP)));
  CHECK(same(keys[4], proc_v4("10.0.0.2", 53, nullptr, 0, IPPROTO_UDP)));
  CHECK(same(keys[5], any_family(proc_v4(nullptr, 53, nullptr, 0, IPPROTO_UDP))));
}

TEST_CASE("owner keys: none for protocols without sockets of ours") {
  CHECK(owner_keys(fake::v4("10.0.0.1", 8, "10.0.0.2", 0, IPPROTO_ICMP, TCF_KIND_ICMP), 0).empty());
  CHECK(owner_keys(fake::v4("10.0.0.1", 0, "10.0.0.2", 0, IPPROTO_GRE, TCF_KIND_IP), 0).empty());
  CHECK(owner_keys(fake::v4("10.0.0.1", 1, "10.0.0.2", 2, IPPROTO_SCTP), 0).empty());
  // A lone fragment's ports are not ports.
  CHECK(owner_keys(fake::v4("10.0.0.1", 0, "10.0.0.2", 0, IPPROTO_UDP, TCF_KIND_FRAG), 0).empty());
}

TEST_CASE("owner_of: pid and the name up to its NUL") {
  tcf_proc_owner raw{};
  raw.tgid = 4242;
  raw.tid = 4243;
  raw.cgroup_id = 77;
  std::strcpy(raw.comm, "curl");
  ProcessOwner owner = owner_of(raw);
  CHECK(owner.pid == 4242);
  CHECK(owner.comm() == "curl");
  CHECK(owner.cgroup_id == 77);
  std::memcpy(raw.comm, "0123456789abcdef", 16); // never so from the kernel: stays in bounds
  CHECK(owner_of(raw).comm() == "0123456789abcdef");
}

TEST_CASE("cgroup2 mount: found in mountinfo, its escapes decoded") {
  std::string hybrid = "35 24 0:30 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n"
                       "37 35 0:32 / /sys/fs/cgroup/memory rw shared:16 - cgroup cgroup rw,memory\n"
                       "36 35 0:31 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw\n";
  CHECK(cgroup2_mount(hybrid) == "/sys/fs/cgroup/unified");
  CHECK(cgroup2_mount("29 1 0:26 / /my\\040cgroups rw - cgroup2 none rw\n") == "/my cgroups");
  CHECK(!cgroup2_mount("37 35 0:32 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"));
}

TEST_CASE("/proc/PID/cgroup: the v2 path, else the systemd hierarchy's, else the first") {
  CHECK(proc_cgroup_path("0::/system.slice/nginx.service\n") == "/system.slice/nginx.service");
  CHECK(proc_cgroup_path("9:name=systemd:/user.slice/a:b\n4:memory:/m\n0::/\n") ==
        "/user.slice/a:b");
  CHECK(proc_cgroup_path("4:memory:/docker/abc\n1:cpu:/\n0::/\n") == "/docker/abc");
  CHECK(proc_cgroup_path("0::/\n") == "/");
  CHECK(!proc_cgroup_path(""));
}

TEST_CASE("cgroup paths: a directory's inode number is its cgroup id") {
  namespace fs = std::filesystem;
  fs::path root = fs::temp_directory_path() / ("tcflows-cgroup-" + std::to_string(::getpid()));
  fs::create_directories(root / "system.slice" / "web.service");
  auto inode = [](const fs::path &p) {
    struct stat st;
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return uint64_t(st.st_ino);
  };
  CgroupPaths paths(root.string());
  CHECK(paths.resolve(inode(root / "system.slice" / "web.service"), 1) ==
        "/system.slice/web.service");
  CHECK(paths.resolve(inode(root), 1) == "/");
  fs::remove_all(root);
}

namespace {

ConnUpdate update_of(const char *uid, bool final) {
  ConnUpdate u;
  u.record.uid = *Uid::from(uid);
  u.record.close_reason = final ? CloseReason::fin : CloseReason::open;
  return u;
}

ProcessOwner named(uint32_t pid, const char *comm) {
  ProcessOwner owner;
  owner.pid = pid;
  std::strncpy(owner.comm_chars.data(), comm, owner.comm_chars.size() - 1);
  return owner;
}

} // namespace

TEST_CASE("owner cache: an owner found once stays with the connection until its final record") {
  OwnerCache cache;
  int asked = 0;
  std::optional<ProcessOwner> in_map = named(7, "curl");
  auto find = [&](const ConnRecord &) {
    asked++;
    return in_map;
  };
  auto counts = [](const ConnRecord &) { return true; };
  std::vector<ConnUpdate> first = {update_of("Ca", false)};
  cache.annotate(first, find, counts);
  REQUIRE(first[0].record.process);
  CHECK(first[0].record.process->comm() == "curl");
  // The process exited and its map entry went: the checkpoint and the final keep it.
  in_map.reset();
  std::vector<ConnUpdate> later = {update_of("Ca", false), update_of("Ca", true)};
  cache.annotate(later, find, counts);
  CHECK(asked == 1);
  for (const auto &u : later)
    CHECK((u.record.process && u.record.process->pid == 7));
  CHECK(cache.size() == 0); // forgotten with the final record
  CHECK(cache.attributed() == 1);
  CHECK(cache.unattributed() == 0);
}

TEST_CASE(
    "owner cache: asked at every update until found; a final without one counted if it counts") {
  OwnerCache cache;
  std::optional<ProcessOwner> in_map;
  int asked = 0;
  auto find = [&](const ConnRecord &) {
    asked++;
    return in_map;
  };
  auto local_only = [](const ConnRecord &r) { return r.uid.view() == "Clocal"; };
  std::vector<ConnUpdate> updates = {update_of("Clate", false), update_of("Clocal", false)};
  cache.annotate(updates, find, local_only);
  CHECK(!updates[0].record.process);
  in_map = named(9, "sshd");
  std::vector<ConnUpdate> next = {update_of("Clate", false)};
  cache.annotate(next, find, local_only);
  CHECK((next[0].record.process && next[0].record.process->comm() == "sshd"));
  in_map.reset();
  std::vector<ConnUpdate> finals = {update_of("Clocal", true), update_of("Cforwarded", true)};
  cache.annotate(finals, find, local_only);
  CHECK(asked == 5);
  CHECK(cache.attributed() == 1);
  CHECK(cache.unattributed() == 1); // Clocal; Cforwarded does not count
  // The live table's open records get the owners kept, without asking.
  std::vector<ConnRecord> open(2);
  open[0].uid = *Uid::from("Clate");
  open[1].uid = *Uid::from("Cother");
  cache.annotate(std::span<ConnRecord>(open));
  CHECK((open[0].process && open[0].process->pid == 9));
  CHECK(!open[1].process);
  CHECK(asked == 5);
}

TEST_CASE("owner cache: the connections of one process share one owner, others have their own") {
  OwnerCache cache;
  std::optional<ProcessOwner> in_map;
  auto find = [&](const ConnRecord &) { return in_map; };
  auto counts = [](const ConnRecord &) { return true; };
  auto owner_of = [&](const char *uid, std::optional<ProcessOwner> owner) {
    in_map = std::move(owner);
    std::vector<ConnUpdate> updates = {update_of(uid, false)};
    cache.annotate(updates, find, counts);
    REQUIRE(updates[0].record.process);
    return updates[0].record.process;
  };
  auto a = owner_of("Ca", named(7, "curl"));
  auto b = owner_of("Cb", named(7, "curl"));
  auto c = owner_of("Cc", named(8, "curl"));
  auto d = owner_of("Cd", named(7, "wget")); // the same pid after an exec
  CHECK(&*a == &*b);
  CHECK(&*a != &*c);
  CHECK(&*a != &*d);
  CHECK(d->comm() == "wget");
  // Many processes, each with one connection that ends: the owners of ended
  // connections go, those of open ones stay.
  for (uint32_t pid = 100; pid < 400; pid++) {
    std::string uid = fmt::format("Cx{}", pid);
    owner_of(uid.c_str(), named(pid, "worker"));
    std::vector<ConnUpdate> final = {update_of(uid.c_str(), true)};
    cache.annotate(final, find, counts);
  }
  CHECK(cache.size() == 4);
  CHECK(cache.interned() < 300); // those no connection holds were dropped
  CHECK(&*owner_of("Ce", named(7, "curl")) == &*a);
  CHECK(cache.attributed() == 305);
}
