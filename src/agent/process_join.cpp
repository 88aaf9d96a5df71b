#include "agent/process_join.h"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <string.h>

#include <algorithm>

namespace tcflows {
namespace {

// Addresses are read again when a connection needs them and they are older than this.
constexpr std::chrono::seconds addresses_max_age{1};

// The IP addresses of this network namespace's interfaces, as flow keys hold them.
std::vector<std::array<uint32_t, 4>> read_addresses() {
  std::vector<std::array<uint32_t, 4>> out;
  ifaddrs *list = nullptr;
  if (::getifaddrs(&list) != 0)
    return out;
  for (ifaddrs *a = list; a; a = a->ifa_next) {
    std::array<uint32_t, 4> addr{};
    if (!a->ifa_addr)
      continue;
    if (a->ifa_addr->sa_family == AF_INET)
      addr[0] = reinterpret_cast<const sockaddr_in *>(a->ifa_addr)->sin_addr.s_addr;
    else if (a->ifa_addr->sa_family == AF_INET6)
      ::memcpy(addr.data(), &reinterpret_cast<const sockaddr_in6 *>(a->ifa_addr)->sin6_addr, 16);
    else
      continue;
    out.push_back(addr);
  }
  ::freeifaddrs(list);
  return out;
}

} // namespace

ProcessJoin::ProcessJoin(std::optional<ProcProgram> program)
    : program_(std::move(program)), cgroups_() {}

std::optional<ProcessOwner> ProcessJoin::find(const ConnRecord &record) {
  for (const tcf_proc_key &key : owner_keys(record.key, record.orig)) {
    if (auto found = program_->lookup(key)) {
      ProcessOwner owner = owner_of(*found);
      owner.cgroup = cgroups_.resolve(owner.cgroup_id, owner.pid);
      return owner;
    }
  }
  return std::nullopt;
}

bool ProcessJoin::local(const tcf_flow_key &key) {
  auto now = std::chrono::steady_clock::now();
  if (now - addresses_read_ > addresses_max_age) {
    addresses_ = read_addresses();
    addresses_read_ = now;
  }
  return std::any_of(addresses_.begin(), addresses_.end(), [&](const auto &addr) {
    return ::memcmp(addr.data(), key.addr[0], 16) == 0 ||
           ::memcmp(addr.data(), key.addr[1], 16) == 0;
  });
}

void ProcessJoin::annotate(std::span<ConnUpdate> updates) {
  if (!program_)
    return;
  // Unattributed: a TCP or UDP connection with an address of this namespace.
  auto counts = [this](const ConnRecord &r) {
    return !owner_keys(r.key, r.orig).empty() && local(r.key);
  };
  owners_.annotate(
      updates, [this](const ConnRecord &r) { return find(r); }, counts);
}

void ProcessJoin::annotate(std::span<ConnRecord> records) const { owners_.annotate(records); }

ProcStats ProcessJoin::stats() const {
  ProcStats s;
  s.available = program_.has_value();
  s.attributed = owners_.attributed();
  s.unattributed = owners_.unattributed();
  if (program_)
    s.kernel = program_->counters();
  return s;
}

} // namespace tcflows
