#include "track/community_id.h"

#include <linux/if_ether.h>
#include <netinet/in.h>
#include <openssl/evp.h>

#include <cstring>
#include <stdexcept>
#include <vector>

namespace tcflows {
namespace {

// Message types that have a counterpart, both ways (the spec's table).
constexpr std::pair<uint8_t, uint8_t> icmp_pairs[] = {
    {8, 0},   // echo request, reply
    {13, 14}, // timestamp request, reply
    {15, 16}, // information request, reply
    {10, 9},  // router solicitation, advertisement
    {17, 18}, // address mask request, reply
};
constexpr std::pair<uint8_t, uint8_t> icmpv6_pairs[] = {
    {128, 129}, // echo request, reply
    {133, 134}, // router solicitation, advertisement
    {135, 136}, // neighbor solicitation, advertisement
    {139, 140}, // node information query, response
    {144, 145}, // home agent address discovery request, reply
    {130, 131}, // multicast listener query, report
};

std::optional<uint8_t> counterpart(std::span<const std::pair<uint8_t, uint8_t>> pairs,
                                   uint8_t type) {
  for (auto [a, b] : pairs) {
    if (type == a)
      return b;
    if (type == b)
      return a;
  }
  return std::nullopt;
}

// The spec's order: the lower address first, on a tie the lower port.
bool in_order(const CommunityTuple &t) {
  if (t.one_way)
    return true;
  int c = std::memcmp(t.src_addr.data(), t.dst_addr.data(), t.src_addr.size());
  if (c != 0)
    return c < 0;
  return !t.has_ports || t.src_port < t.dst_port;
}

void append_port(std::vector<uint8_t> &out, uint16_t port) {
  out.push_back(uint8_t(port >> 8));
  out.push_back(uint8_t(port));
}

bool has_spec_ports(uint8_t proto) {
  return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP ||
         proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6;
}

} // namespace

IcmpPorts icmp_ports(bool icmpv6, uint8_t type, uint8_t code) {
  auto other = icmpv6 ? counterpart(icmpv6_pairs, type) : counterpart(icmp_pairs, type);
  if (other)
    return {type, *other, false};
  return {type, code, true};
}

CommunityId community_id(const CommunityTuple &tuple, uint16_t seed) {
  CommunityTuple t = tuple;
  if (!in_order(t)) {
    std::swap(t.src_addr, t.dst_addr);
    std::swap(t.src_port, t.dst_port);
  }
  std::vector<uint8_t> data;
  data.reserve(2 + 32 + 2 + 4);
  append_port(data, seed);
  data.insert(data.end(), t.src_addr.begin(), t.src_addr.end());
  data.insert(data.end(), t.dst_addr.begin(), t.dst_addr.end());
  data.push_back(t.proto);
  data.push_back(0);
  if (t.has_ports) {
    append_port(data, t.src_port);
    append_port(data, t.dst_port);
  }
  CommunityId id;
  unsigned int size = 0;
  if (!EVP_Digest(data.data(), data.size(), id.digest.data(), &size, EVP_sha1(), nullptr) ||
      size != id.digest.size())
    throw std::runtime_error("SHA-1 failed (libcrypto)");
  return id;
}

std::optional<CommunityId> community_id(const ConnRecord &r, uint16_t seed) {
  const tcf_flow_key &key = r.key;
  if (key.kind == TCF_KIND_LINK || key.kind == TCF_KIND_FRAG)
    return std::nullopt;
  size_t addr_len = key.ethertype == ETH_P_IPV6 ? 16 : 4;
  CommunityTuple t;
  t.src_addr = {reinterpret_cast<const uint8_t *>(key.addr[r.orig]), addr_len};
  t.dst_addr = {reinterpret_cast<const uint8_t *>(key.addr[r.resp()]), addr_len};
  t.proto = key.proto;
  if (key.kind == TCF_KIND_ICMP_ECHO || key.kind == TCF_KIND_ICMP) {
    IcmpPorts p = icmp_ports(key.proto == IPPROTO_ICMPV6, uint8_t(r.src_port), uint8_t(r.dst_port));
    t = {t.src_addr, t.dst_addr, t.proto, true, p.src, p.dst, p.one_way};
  } else if (key.kind == TCF_KIND_PORTS && has_spec_ports(key.proto)) {
    t = {t.src_addr, t.dst_addr, t.proto, true, r.src_port, r.dst_port};
  }
  return community_id(t, seed);
}

std::string community_id_text(const CommunityId &id) {
  unsigned char base64[4 * ((sizeof(id.digest) + 2) / 3) + 1];
  int n = EVP_EncodeBlock(base64, id.digest.data(), int(id.digest.size()));
  return "1:" + std::string(reinterpret_cast<const char *>(base64), size_t(n));
}

} // namespace tcflows
