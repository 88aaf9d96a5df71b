#include "fuzz_reading.h"

#include <linux/if_ether.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <utility>

namespace tcflows::test {

namespace {

constexpr size_t eth_hlen = 14;
constexpr int max_tags = 4;   // TCF_MAX_VLAN_TAGS in bpf/parse.h
constexpr int max_chain = 16; // more than any parser follows

uint16_t get16(const Bytes &f, size_t at) { return uint16_t(f[at] << 8 | f[at + 1]); }

// Extension headers: the RFC 8200 ones, Mobility (135), HIP (139), Shim6 (140).
bool is_ext(uint8_t nh) {
  return nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS ||
         nh == IPPROTO_AH || nh == IPPROTO_FRAGMENT || nh == 135 || nh == 139 || nh == 140;
}

int ip_version(uint16_t ethertype) {
  return ethertype == ETH_P_IP ? 4 : ethertype == ETH_P_IPV6 ? 6 : 0;
}

// (protocol, transport offset) pairs an IP header at l3 leads to: for IPv6
// every step of the extension chain, however long the chain.
std::vector<std::pair<uint8_t, size_t>> l4_positions(const Bytes &f, size_t l3, int version) {
  std::vector<std::pair<uint8_t, size_t>> out;
  if (version == 4 && l3 + 20 <= f.size())
    out.push_back({f[l3 + 9], l3 + (f[l3] & 0x0f) * 4u});
  if (version != 6 || l3 + 40 > f.size())
    return out;
  uint8_t nh = f[l3 + 6];
  size_t off = l3 + 40;
  out.push_back({nh, off});
  for (int i = 0; i < max_chain && is_ext(nh) && off + 2 <= f.size(); i++) {
    size_t len = nh == IPPROTO_FRAGMENT ? 8
                 : nh == IPPROTO_AH     ? (f[off + 1] + 2u) * 4
                                        : (f[off + 1] + 1u) * 8;
    nh = f[off];
    off += len;
    out.push_back({nh, off});
  }
  return out;
}

void add_transport(const Bytes &f, uint8_t proto, size_t l4, L4Readings &out) {
  out.insert({proto, TCF_KIND_IP, 0, 0});
  out.insert({proto, TCF_KIND_FRAG, 0, 0});
  if (l4 + 2 <= f.size())
    out.insert({proto, TCF_KIND_ICMP, get16(f, l4), 0});
  if (l4 + 4 <= f.size())
    out.insert({proto, TCF_KIND_PORTS, get16(f, l4), get16(f, l4 + 2)});
  if (l4 + 6 <= f.size())
    out.insert({proto, TCF_KIND_ICMP_ECHO, get16(f, l4 + 4), get16(f, l4 + 4)});
}

L4Readings frame_l4(const Bytes &f, size_t l3, int version) {
  L4Readings out;
  for (auto [proto, l4] : l4_positions(f, l3, version))
    add_transport(f, proto, l4, out);
  return out;
}

// A later fragment (IPv4 offset, or any IPv6 fragment header) may carry the
// transport reading of another frame: its first fragment.
bool may_be_fragment(const Bytes &f, size_t l3, int version) {
  if (version == 4)
    return l3 + 8 <= f.size() && (get16(f, l3 + 6) & 0x1fff);
  for (auto [proto, l4] : l4_positions(f, l3, version))
    if (proto == IPPROTO_FRAGMENT)
      return true;
  return false;
}

bool addr_is(const tcf_flow_key &k, int side, const uint8_t *want, size_t len) {
  const auto *a = reinterpret_cast<const uint8_t *>(k.addr[side]);
  return std::memcmp(a, want, len) == 0 &&
         std::all_of(a + len, a + sizeof(k.addr[side]), [](uint8_t b) { return b == 0; });
}

bool is_tag(uint16_t type) { return type == ETH_P_8021Q || type == ETH_P_8021AD; }

// A link-layer flow: never for an IP EtherType, nor for a tag within the
// tags a parser follows.
bool link_fits(const Bytes &f, const tcf_flow_key &k, int dir, int tags, uint16_t type) {
  size_t l3 = eth_hlen + 4 * tags;
  if (ip_version(type) || (is_tag(type) && tags < max_tags))
    return false;
  if (k.proto != 0 || !addr_is(k, dir, &f[6], 6) || !addr_is(k, 1 - dir, &f[0], 6))
    return false;
  if (type >= ETH_P_802_3_MIN)
    return k.ethertype == type && k.port[0] == 0 && k.port[1] == 0;
  if (l3 + 3 > f.size())
    return false;
  uint16_t saps = get16(f, l3);
  if (k.port[0] != saps || k.port[1] != saps)
    return false;
  if (saps != 0xaaaa)
    return k.ethertype == TCF_ETH_LLC;
  return l3 + 8 <= f.size() && k.ethertype == get16(f, l3 + 6);
}

bool ip_fits(const Bytes &f, const tcf_flow_key &k, int dir, size_t l3, uint16_t type,
             const L4Readings &batch) {
  int version = ip_version(type);
  size_t alen = version == 4 ? 4 : 16, src = version == 4 ? 12 : 8;
  if (!version || k.ethertype != type || l3 + src + 2 * alen > f.size())
    return false;
  if (!addr_is(k, dir, &f[l3 + src], alen) || !addr_is(k, 1 - dir, &f[l3 + src + alen], alen))
    return false;
  L4Reading mine{k.proto, k.kind, k.port[dir], k.port[1 - dir]};
  return frame_l4(f, l3, version).count(mine) ||
         (may_be_fragment(f, l3, version) && batch.count(mine));
}

} // namespace

void add_l4_readings(const Bytes &frame, L4Readings &out) {
  for (int tags = 0; tags <= max_tags; tags++) {
    size_t l3 = eth_hlen + 4 * tags;
    if (l3 > frame.size())
      return;
    L4Readings r = frame_l4(frame, l3, ip_version(get16(frame, l3 - 2)));
    out.insert(r.begin(), r.end());
  }
}

std::vector<size_t> readings_of_key(const Bytes &f, const tcf_flow_key &k, int dir,
                                    const L4Readings &batch) {
  std::vector<size_t> found;
  if (k.ifindex != test_ifindex || k.kind > TCF_KIND_LINK)
    return found;
  for (int tags = 0; tags <= max_tags; tags++) {
    size_t l3 = eth_hlen + 4 * tags;
    if (l3 > f.size())
      break;
    uint16_t vlan0 = tags >= 1 ? get16(f, 14) & 0x0fff : 0;
    uint16_t vlan1 = tags >= 2 ? get16(f, 18) & 0x0fff : 0;
    if (k.vlan[0] != vlan0 || k.vlan[1] != vlan1)
      continue;
    uint16_t type = get16(f, l3 - 2);
    bool fits = k.kind == TCF_KIND_LINK ? link_fits(f, k, dir, tags, type)
                                        : ip_fits(f, k, dir, l3, type, batch);
    if (fits)
      found.push_back(l3);
  }
  return found;
}

bool bytes_fit(const Bytes &f, const tcf_flow_key &k, size_t l3, uint32_t wire_packets,
               uint64_t bytes) {
  if (k.kind == TCF_KIND_LINK)
    return bytes == f.size();
  uint64_t avail = f.size() - l3;
  if (wire_packets > 1) {
    uint64_t extra = bytes - avail, segs = wire_packets - 1;
    return bytes >= avail && extra % segs == 0 && extra / segs <= avail;
  }
  if (k.ethertype == ETH_P_IP)
    return bytes == get16(f, l3 + 2);
  // A payload length of 0 is a jumbogram's only behind a hop-by-hop header
  // (RFC 2675); otherwise the payload is empty.
  uint16_t plen = get16(f, l3 + 4);
  bool jumbo = plen == 0 && f[l3 + 6] == IPPROTO_HOPOPTS;
  return bytes == (jumbo ? avail : plen + 40u);
}

namespace {

std::optional<tcf_counter> invalid_ipv4(const Bytes &f, size_t l3, bool gso) {
  if (l3 + 20 > f.size() || f[l3] >> 4 != 4 || (f[l3] & 0x0f) < 5)
    return TCF_CTR_MAL_IPV4;
  size_t avail = f.size() - l3, ihl = (f[l3] & 0x0f) * 4u, len = get16(f, l3 + 2);
  if (gso ? avail < ihl : len == 0 || len < ihl || len > avail)
    return TCF_CTR_MAL_IPV4;
  return std::nullopt;
}

std::optional<tcf_counter> invalid_ipv6(const Bytes &f, size_t l3, bool gso) {
  if (l3 + 40 > f.size() || f[l3] >> 4 != 6)
    return TCF_CTR_MAL_IPV6;
  uint16_t plen = get16(f, l3 + 4);
  bool jumbo = plen == 0 && f[l3 + 6] == IPPROTO_HOPOPTS;
  if (!gso && !jumbo && plen + 40u > f.size() - l3)
    return TCF_CTR_MAL_IPV6;
  return std::nullopt;
}

// A transport header that does not fit in the IP payload of `l4_len` bytes,
// or whose own length field is out of bounds.
bool bad_transport(const Bytes &f, uint8_t proto, size_t l4, size_t l4_len, bool gso,
                   bool first_fragment) {
  switch (proto) {
  case IPPROTO_TCP:
    return l4_len < 20 || (f[l4 + 12] >> 4) < 5 || (f[l4 + 12] >> 4) * 4u > l4_len;
  case IPPROTO_UDP:
  case IPPROTO_UDPLITE: {
    if (l4_len < 8 || proto == IPPROTO_UDPLITE || gso)
      return l4_len < 8;
    uint16_t ulen = get16(f, l4 + 4); // 0: a jumbogram's
    return ulen != 0 && (ulen < 8 || (ulen > l4_len && !first_fragment));
  }
  case IPPROTO_SCTP:
    return l4_len < 12;
  case IPPROTO_DCCP:
    return l4_len < 12 || f[l4 + 4] < 3 || f[l4 + 4] * 4u > l4_len;
  case IPPROTO_ICMP:
  case IPPROTO_ICMPV6:
    return l4_len < 8;
  }
  return false;
}

// The transport header right behind a valid IP header (no IPv6 extension
// headers, not a later fragment).
bool invalid_transport(const Bytes &f, size_t l3, bool gso) {
  size_t avail = f.size() - l3;
  if (f[l3] >> 4 == 4) {
    size_t ihl = (f[l3] & 0x0f) * 4u, frag = get16(f, l3 + 6);
    if (frag & 0x1fff)
      return false;
    size_t len = gso ? avail : get16(f, l3 + 2);
    return bad_transport(f, f[l3 + 9], l3 + ihl, len - ihl, gso, frag & 0x2000);
  }
  uint8_t nh = f[l3 + 6];
  uint16_t plen = get16(f, l3 + 4);
  if (is_ext(nh))
    return false;
  size_t len = gso || plen == 0 ? avail - 40 : plen; // plen 0 without hop-by-hop: empty
  return bad_transport(f, nh, l3 + 40, !gso && plen == 0 ? 0 : len, gso, false);
}

} // namespace

std::optional<tcf_counter> invalid_header(const Bytes &f, bool gso) {
  size_t off = 12;
  for (int tags = 0; tags < max_tags && off + 2 <= f.size() && is_tag(get16(f, off)); tags++) {
    if (off + 2 + 4 > f.size())
      return TCF_CTR_MAL_L2;
    off += 4;
  }
  if (off + 2 > f.size())
    return std::nullopt;
  uint16_t type = get16(f, off);
  std::optional<tcf_counter> ip;
  if (type == ETH_P_IP)
    ip = invalid_ipv4(f, off + 2, gso);
  else if (type == ETH_P_IPV6)
    ip = invalid_ipv6(f, off + 2, gso);
  else
    return std::nullopt;
  if (!ip && invalid_transport(f, off + 2, gso))
    return TCF_CTR_MAL_L4;
  return ip;
}

} // namespace tcflows::test
