#include "text_record.h"

#include "track/flow.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <netinet/in.h>

#include <cstdio>
#include <map>
#include <mutex>
#include <stdexcept>

namespace tcflows::test {
namespace {

std::mutex names_mutex;
std::map<std::string, uint32_t> numbered; // interface name -> index

uint32_t ifindex_of(const std::string &name) {
  std::lock_guard lock(names_mutex);
  auto [it, added] = numbered.try_emplace(name, static_cast<uint32_t>(numbered.size() + 1));
  return it->second;
}

[[noreturn]] void bad(const std::string &what) { throw std::invalid_argument(what); }

// Parses `text` into key side `side`; returns the key's ethertype for it.
uint16_t put_address(tcf_flow_key &key, int side, const std::string &text) {
  auto *bytes = reinterpret_cast<uint8_t *>(key.addr[side]);
  if (inet_pton(AF_INET, text.c_str(), bytes) == 1)
    return ETH_P_IP;
  if (inet_pton(AF_INET6, text.c_str(), bytes) == 1)
    return ETH_P_IPV6;
  unsigned mac[6];
  char end;
  if (std::sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &mac[0], &mac[1], &mac[2], &mac[3],
                  &mac[4], &mac[5], &end) == 6) {
    for (int i = 0; i < 6; i++)
      bytes[i] = static_cast<uint8_t>(mac[i]);
    return 0;
  }
  bad("not an address: " + text);
}

bool has_ports(uint8_t proto) {
  return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP ||
         proto == IPPROTO_DCCP || proto == IPPROTO_UDPLITE;
}

tcf_flow_key key_of(const TextRecord &t) {
  tcf_flow_key key{};
  uint16_t src = put_address(key, 0, t.src_addr), dst = put_address(key, 1, t.dst_addr);
  if (src != dst)
    bad("addresses of two families: " + t.src_addr + " " + t.dst_addr);
  if (auto proto = ip_protocol_number(t.proto)) {
    if (!src)
      bad(t.proto + " between MAC addresses");
    key.ethertype = src;
    key.proto = *proto;
    bool icmp = *proto == IPPROTO_ICMP || *proto == IPPROTO_ICMPV6;
    key.kind = has_ports(*proto) ? TCF_KIND_PORTS : icmp ? TCF_KIND_ICMP : TCF_KIND_IP;
    if (key.kind == TCF_KIND_PORTS) {
      key.port[0] = t.src_port;
      key.port[1] = t.dst_port;
    }
  } else if (t.proto == "ARP" && !src) {
    key.ethertype = ETH_P_ARP;
    key.kind = TCF_KIND_LINK;
  } else {
    bad("not a protocol of these addresses: " + t.proto);
  }
  key.vlan[0] = t.vlan;
  key.ifindex = ifindex_of(t.iface);
  return key;
}

} // namespace

ConnRecord binary(const TextRecord &t) {
  ConnRecord r;
  auto uid = Uid::from(t.uid);
  auto state = parse_state(t.state);
  auto close_reason = parse_close_reason(t.close_reason.value_or(""));
  if (!uid || !state || !close_reason || t.history.size() > History::capacity)
    bad("not a record: uid " + t.uid + ", state " + t.state + ", history " + t.history);
  r.uid = *uid;
  r.key = key_of(t);
  r.orig = canonicalise(r.key) == TCF_DIR_FWD ? 0 : 1; // the source's side, once ordered
  r.src_port = t.src_port;
  r.dst_port = t.dst_port;
  r.start_ns = t.start_ns;
  r.end_ns = t.end_ns;
  r.orig_pkts = t.orig_pkts;
  r.orig_bytes = t.orig_bytes;
  r.resp_pkts = t.resp_pkts;
  r.resp_bytes = t.resp_bytes;
  r.state = *state;
  r.history = History(t.history);
  r.close_reason = *close_reason;
  r.rtt_ns = t.rtt_ns;
  r.orig_tcp_flags = t.orig_tcp_flags;
  r.resp_tcp_flags = t.resp_tcp_flags;
  r.orig_guessed = t.orig_guessed;
  r.orig_ingress = t.orig_ingress;
  return r;
}

InterfacesSnapshot interfaces() {
  std::vector<InterfaceNames::Entry> entries;
  std::lock_guard lock(names_mutex);
  for (const auto &[name, ifindex] : numbered)
    entries.push_back({ifindex, name, name == "lo"});
  return std::make_shared<const InterfaceNames>(std::move(entries));
}

TextRecord text_of(const ConnRecord &r, const InterfaceNames &names) {
  TextRecord t;
  t.uid = r.uid.view();
  t.iface = names.name_of(r.ifindex());
  t.proto = proto_name(r.key);
  t.src_addr = addr_text(r.key, r.orig);
  t.src_port = r.src_port;
  t.dst_addr = addr_text(r.key, r.resp());
  t.dst_port = r.dst_port;
  t.vlan = r.vlan();
  t.start_ns = r.start_ns;
  t.end_ns = r.end_ns;
  t.orig_pkts = r.orig_pkts;
  t.orig_bytes = r.orig_bytes;
  t.resp_pkts = r.resp_pkts;
  t.resp_bytes = r.resp_bytes;
  t.state = state_name(r.state);
  t.history = r.history.view();
  if (r.final())
    t.close_reason = close_reason_name(r.close_reason);
  t.rtt_ns = r.rtt_ns;
  t.orig_tcp_flags = r.orig_tcp_flags;
  t.resp_tcp_flags = r.resp_tcp_flags;
  t.orig_guessed = r.orig_guessed;
  t.orig_ingress = r.orig_ingress;
  return t;
}

ConnUpdate update_of(const TextRecord &text, const TrafficDelta &delta) {
  return {binary(text), delta};
}

} // namespace tcflows::test
