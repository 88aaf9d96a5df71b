#include "track/process.h"

#include <linux/if_ether.h>
#include <netinet/in.h>
#include <string.h>

namespace tcflows {

std::string_view ProcessOwner::comm() const {
  return {comm_chars.data(), ::strnlen(comm_chars.data(), comm_chars.size())};
}

ProcessOwner owner_of(const tcf_proc_owner &owner) {
  ProcessOwner o;
  o.pid = owner.tgid;
  ::memcpy(o.comm_chars.data(), owner.comm, sizeof(owner.comm));
  o.cgroup_id = owner.cgroup_id;
  return o;
}

namespace {

// Side `local` of `key` as the local socket's: exactly, or with the remote
// end unknown (an unconnected UDP socket), the local address as given or any
// (then of either family: see tcf_proc_key).
enum class Remote { exact, any };

tcf_proc_key proc_key(const tcf_flow_key &key, int local, Remote remote, bool any_local) {
  tcf_proc_key k{};
  int peer = 1 - local;
  if (!any_local)
    ::memcpy(k.local, key.addr[local], sizeof(k.local));
  k.local_port = key.port[local];
  if (remote == Remote::exact) {
    ::memcpy(k.remote, key.addr[peer], sizeof(k.remote));
    k.remote_port = key.port[peer];
  }
  k.ethertype = any_local && remote == Remote::any ? 0 : key.ethertype;
  k.proto = key.proto;
  return k;
}

} // namespace

std::vector<tcf_proc_key> owner_keys(const tcf_flow_key &key, int orig) {
  bool ip = key.ethertype == ETH_P_IP || key.ethertype == ETH_P_IPV6;
  if (!ip || key.kind != TCF_KIND_PORTS || (key.proto != IPPROTO_TCP && key.proto != IPPROTO_UDP))
    return {};
  std::vector<tcf_proc_key> keys;
  for (int local : {orig, 1 - orig}) {
    keys.push_back(proc_key(key, local, Remote::exact, false));
    if (key.proto != IPPROTO_UDP)
      continue;
    keys.push_back(proc_key(key, local, Remote::any, false));
    keys.push_back(proc_key(key, local, Remote::any, true));
  }
  return keys;
}

} // namespace tcflows
