#include "fuzz_frames.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <linux/if_ether.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

namespace tcflows::test {

namespace {

constexpr size_t eth_hlen = 14;
constexpr uint64_t max_ext_hdrs = 8;  // TCF_MAX_EXT_HDRS in bpf/parse.h
constexpr uint64_t max_vlan_tags = 4; // TCF_MAX_VLAN_TAGS in bpf/parse.h
constexpr uint64_t ms = 1'000'000;

// A frame under construction: its bytes, where its headers are, and what it
// must count as while it is still valid.
struct Base {
  Bytes data;
  size_t l3 = eth_hlen;    // first byte after the Ethernet header and tags
  int ip = 0;              // 4, 6, or 0 for link-layer frames
  size_t l4 = 0;           // transport header (or the payload of a later fragment)
  uint8_t proto = 0;       // transport protocol
  std::vector<size_t> ext; // IPv6 extension headers
  size_t unpadded = 0;     // frame length before Ethernet padding
  bool may_pad = true;
  Must must = Must::count;
  Expected expected{};
  std::string how;
};

struct Ctx {
  Rng &r;
  const Pools &pools;
};

std::string text4(uint32_t addr) {
  char buf[INET_ADDRSTRLEN];
  return inet_ntop(AF_INET, &addr, buf, sizeof(buf));
}

std::string text6(const std::array<uint8_t, 16> &addr) {
  char buf[INET6_ADDRSTRLEN];
  return inet_ntop(AF_INET6, addr.data(), buf, sizeof(buf));
}

// Addresses and ports: mostly from the batch's pools, so that flows repeat.
Mac mac(Ctx &c) {
  if (c.r.chance(0.8))
    return c.pools.macs[c.r.below(c.pools.macs.size())];
  Mac m;
  for (auto &b : m)
    b = c.r.byte();
  return m;
}

uint32_t ip4(Ctx &c) {
  return c.r.chance(0.8) ? c.pools.ipv4[c.r.below(c.pools.ipv4.size())] : c.r.u32();
}

std::array<uint8_t, 16> ip6(Ctx &c) {
  if (c.r.chance(0.8))
    return c.pools.ipv6[c.r.below(c.pools.ipv6.size())];
  std::array<uint8_t, 16> a;
  for (auto &b : a)
    b = c.r.byte();
  return a;
}

uint16_t port(Ctx &c) {
  return c.r.chance(0.7) ? c.pools.ports[c.r.below(c.pools.ports.size())] : c.r.u16();
}

size_t payload_len(Ctx &c) { return c.r.chance(0.7) ? c.r.below(64) : c.r.below(1400); }

uint16_t get16(const Bytes &d, size_t at) { return uint16_t(d[at] << 8 | d[at + 1]); }

// Writes that fall beyond a truncated frame are dropped.
void put8(Bytes &d, size_t at, uint8_t v) {
  if (at < d.size())
    d[at] = v;
}

void put16(Bytes &d, size_t at, uint16_t v) {
  put8(d, at, uint8_t(v >> 8));
  put8(d, at + 1, uint8_t(v));
}

void set_ports(Base &base, uint8_t kind, uint16_t a, uint16_t b) {
  base.expected.key.kind = kind;
  base.expected.key.port[0] = a;
  base.expected.key.port[1] = b;
}

// ---------------------------------------------------------------- transport

// Protocols without ports (kind TCF_KIND_IP): GRE, ESP, OSPF, PIM, VRRP, ...
constexpr uint8_t other_protos[] = {4, 41, 47, 50, 59, 89, 103, 112, 115, 255};

uint32_t tcp_layer(Ctx &c, PacketBuilder &b, Base &base) {
  uint16_t sp = port(c), dp = port(c);
  uint8_t doff = uint8_t(c.r.chance(0.3) ? c.r.range(6, 15) : 5);
  b.tcp(sp, dp, c.r.byte(), {.doff = doff, .seq = c.r.u32()});
  set_ports(base, TCF_KIND_PORTS, sp, dp);
  return doff * 4u;
}

uint32_t ports_layer(Ctx &c, PacketBuilder &b, Base &base, uint8_t proto) {
  uint16_t sp = port(c), dp = port(c);
  set_ports(base, TCF_KIND_PORTS, sp, dp);
  switch (proto) {
  case IPPROTO_UDP:
    b.udp(sp, dp);
    return 8;
  case IPPROTO_UDPLITE:
    b.udplite(sp, dp);
    return 8;
  case IPPROTO_SCTP:
    b.sctp(sp, dp);
    return 12;
  }
  b.dccp(sp, dp);
  return 16;
}

uint32_t icmp_layer(Ctx &c, PacketBuilder &b, Base &base, int version) {
  const uint8_t echo[2] = {uint8_t(version == 4 ? 8 : 128), uint8_t(version == 4 ? 0 : 129)};
  uint8_t type = echo[c.r.below(2)];
  if (c.r.chance(0.5))
    while (type == echo[0] || type == echo[1])
      type = c.r.byte();
  uint8_t code = uint8_t(c.r.below(4));
  uint16_t id = port(c);
  if (version == 4)
    b.icmp(type, code, id, c.r.u16());
  else
    b.icmpv6(type, code, id, c.r.u16());
  if (type == echo[0] || type == echo[1])
    set_ports(base, TCF_KIND_ICMP_ECHO, id, id);
  else
    set_ports(base, TCF_KIND_ICMP, uint16_t(type << 8 | code), 0);
  return 8;
}

// The transport header and payload; returns the transport header's length.
uint32_t transport(Ctx &c, PacketBuilder &b, Base &base, int version) {
  static constexpr uint8_t with_ports[] = {IPPROTO_UDP, IPPROTO_UDPLITE, IPPROTO_SCTP,
                                           IPPROTO_DCCP};
  uint32_t len = 0;
  uint64_t which = c.r.below(8);
  if (which < 2) {
    base.proto = IPPROTO_TCP;
    len = tcp_layer(c, b, base);
  } else if (which < 5) {
    base.proto = which == 2 ? uint8_t(IPPROTO_UDP) : c.r.pick(with_ports);
    len = ports_layer(c, b, base, base.proto);
  } else if (which < 7) {
    base.proto = version == 4 ? uint8_t(IPPROTO_ICMP) : uint8_t(IPPROTO_ICMPV6);
    len = icmp_layer(c, b, base, version);
  } else {
    base.proto = c.r.pick(other_protos);
    base.proto == IPPROTO_GRE ? b.gre() : b.ip_proto(base.proto);
    set_ports(base, TCF_KIND_IP, 0, 0);
  }
  base.expected.key.proto = base.proto;
  b.payload(payload_len(c), c.r.byte());
  return len;
}

// The payload of a later fragment: no transport header, so the program
// counts it under its first fragment's flow, or a marked fragment flow.
void later_fragment(Ctx &c, PacketBuilder &b, Base &base) {
  static constexpr uint8_t protos[] = {IPPROTO_TCP,    IPPROTO_UDP, IPPROTO_ICMP,
                                       IPPROTO_ICMPV6, IPPROTO_GRE, IPPROTO_SCTP};
  base.proto = c.r.pick(protos);
  b.ip_proto(base.proto).payload(c.r.range(1, 200), c.r.byte());
  base.expected.key.proto = base.proto;
  base.expected.ports_known = false;
  set_ports(base, TCF_KIND_FRAG, 0, 0);
}

// ---------------------------------------------------------------- IPv4, IPv6

void ipv4_base(Ctx &c, PacketBuilder &b, Base &base) {
  Ipv4Opts o;
  o.ihl = uint8_t(c.r.chance(0.3) ? c.r.range(6, 15) : 5);
  o.id = uint16_t(c.r.below(4)); // few ids: later fragments meet their first
  uint64_t frag = c.r.below(10); // 7: first fragment, 8-9: later fragment
  o.more_fragments = frag == 7 || (frag > 7 && c.r.chance(0.5));
  if (frag > 7)
    o.frag_offset = uint16_t(c.r.range(1, 0x1fff));
  uint32_t src = ip4(c), dst = ip4(c);
  b.ipv4(text4(src), text4(dst), o);
  base.ip = 4;
  base.expected.key.ethertype = ETH_P_IP;
  std::memset(base.expected.key.addr, 0, sizeof(base.expected.key.addr));
  base.expected.key.addr[0][0] = src;
  base.expected.key.addr[1][0] = dst;
  base.l4 = b.size();
  base.how += fmt::format(" ipv4 ihl {} id {}{}", o.ihl, o.id,
                          frag == 7  ? " first-fragment"
                          : frag > 7 ? " later-fragment"
                                     : "");
  base.expected.hdr_len = o.ihl * 4u;
  if (frag > 7)
    later_fragment(c, b, base);
  else
    base.expected.hdr_len += transport(c, b, base, 4);
}

// Hop-by-hop, routing, destination options, AH, Mobility, HIP or Shim6.
void ipv6_ext(Ctx &c, PacketBuilder &b, Base &base, uint8_t type, uint32_t &hdr_len) {
  size_t at = b.size();
  base.ext.push_back(at);
  if (type == IPPROTO_AH)
    b.ipv6_ah();
  else
    b.ipv6_ext(type, uint8_t(c.r.below(4)));
  hdr_len += uint32_t(b.size() - at);
}

// A fragment header: returns true when the fragment is a later one.
bool ipv6_frag(Ctx &c, PacketBuilder &b, Base &base, uint32_t &hdr_len) {
  uint64_t kind = c.r.below(3); // 0 first, 1 later, 2 atomic
  base.ext.push_back(b.size());
  bool more = kind == 0 || (kind == 1 && c.r.chance(0.5));
  b.ipv6_frag(kind == 1 ? uint16_t(c.r.range(1, 0x1fff)) : 0, more, uint32_t(c.r.below(4)));
  hdr_len += 8;
  base.how += kind == 0 ? " first-fragment" : kind == 1 ? " later-fragment" : " atomic-fragment";
  return kind == 1;
}

void ipv6_base(Ctx &c, PacketBuilder &b, Base &base) {
  static constexpr uint8_t ext_types[] = {IPPROTO_HOPOPTS,
                                          IPPROTO_ROUTING,
                                          IPPROTO_DSTOPTS,
                                          IPPROTO_AH,
                                          135,
                                          139,
                                          140}; // Mobility, HIP, Shim6
  bool jumbo = c.r.chance(0.05);                // payload length 0 behind a hop-by-hop header
  auto src = ip6(c), dst = ip6(c);
  b.ipv6(text6(src), text6(dst),
         {.payload_length = jumbo ? std::optional<uint16_t>(0) : std::nullopt});
  base.ip = 6;
  base.expected.key.ethertype = ETH_P_IPV6;
  std::memcpy(base.expected.key.addr[0], src.data(), 16);
  std::memcpy(base.expected.key.addr[1], dst.data(), 16);
  base.may_pad = !jumbo;
  uint64_t n = jumbo ? c.r.range(1, 3) : c.r.chance(0.5) ? 0 : c.r.range(1, 4);
  // A jumbogram's first header stays hop-by-hop.
  int64_t frag_at = c.r.chance(0.25) ? int64_t(c.r.range(jumbo, n)) : -1;
  uint32_t hdr_len = 40;
  base.how += fmt::format(" ipv6{} ext {}", jumbo ? " jumbo" : "", n);
  for (uint64_t i = 0; i <= n; i++) {
    if (int64_t(i) == frag_at && ipv6_frag(c, b, base, hdr_len)) {
      base.l4 = b.size();
      base.expected.hdr_len = hdr_len;
      return later_fragment(c, b, base);
    }
    if (i < n)
      ipv6_ext(c, b, base, jumbo && i == 0 ? uint8_t(IPPROTO_HOPOPTS) : c.r.pick(ext_types),
               hdr_len);
  }
  base.l4 = b.size();
  base.expected.hdr_len = hdr_len + transport(c, b, base, 6);
}

// More extension headers than the parser follows, each 8 bytes, possibly all
// of one type pointing at the next of the same type: must be malformed.
void ipv6_long_chain(Ctx &c, PacketBuilder &b, Base &base) {
  static constexpr uint8_t ext_types[] = {IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS};
  auto src = ip6(c), dst = ip6(c);
  b.ipv6(text6(src), text6(dst));
  base.ip = 6;
  uint64_t n = c.r.range(max_ext_hdrs + 1, 24);
  uint8_t same = c.r.chance(0.5) ? c.r.pick(ext_types) : 0xff;
  for (uint64_t i = 0; i < n; i++) {
    base.ext.push_back(b.size());
    b.ipv6_ext(same != 0xff ? same : c.r.pick(ext_types));
  }
  base.l4 = b.size();
  base.proto = IPPROTO_TCP;
  b.tcp(port(c), port(c), c.r.byte()).payload(payload_len(c));
  base.must = Must::malformed_ipv6_ext;
  base.how +=
      fmt::format(" ipv6 chain of {} extension headers{}", n, same != 0xff ? " (self)" : "");
}

// ---------------------------------------------------------------- link layer

void link_base(Ctx &c, PacketBuilder &b, Base &base) {
  static constexpr uint16_t reserved[] = {ETH_P_IP, ETH_P_IPV6, ETH_P_8021Q, ETH_P_8021AD};
  tcf_flow_key &key = base.expected.key;
  key.kind = TCF_KIND_LINK;
  switch (c.r.below(8)) {
  case 0:
    b.arp(text4(ip4(c)), text4(ip4(c)));
    key.ethertype = ETH_P_ARP;
    base.how += " arp";
    return;
  case 1:
    b.lldp();
    key.ethertype = ETH_P_LLDP;
    base.how += " lldp";
    return;
  case 2:
  case 3: {
    uint8_t dsap = c.r.chance(0.5) ? 0x42 : c.r.byte(), ssap = c.r.chance(0.5) ? dsap : c.r.byte();
    if (dsap == 0xaa && ssap == 0xaa)
      dsap = 0x42;
    b.llc(dsap, ssap).payload(c.r.range(3, 60), c.r.byte());
    key.ethertype = TCF_ETH_LLC;
    key.port[0] = key.port[1] = uint16_t(dsap << 8 | ssap);
    base.how += fmt::format(" llc {:02x}/{:02x}", dsap, ssap);
    return;
  }
  case 4:
  case 5: {
    uint16_t pid = c.r.chance(0.3)   ? uint16_t(0x2000)
                   : c.r.chance(0.3) ? uint16_t(ETH_P_IP)
                                     : c.r.u16();
    b.snap({0, 0, uint8_t(c.r.below(2) * 0x0c)}, pid).payload(c.r.below(60), c.r.byte());
    key.ethertype = pid;
    key.port[0] = key.port[1] = 0xaaaa;
    base.how += fmt::format(" snap 0x{:04x}", pid);
    return;
  }
  }
  uint16_t type = uint16_t(c.r.range(ETH_P_802_3_MIN, 0xffff));
  while (std::count(std::begin(reserved), std::end(reserved), type))
    type++;
  b.payload(payload_len(c), c.r.byte());
  base.data = b.build();
  put16(base.data, base.l3 - 2, type);
  key.ethertype = type;
  base.how += fmt::format(" ethertype 0x{:04x}", type);
}

// ---------------------------------------------------------------- bases

Base base_frame(Ctx &c) {
  Base base;
  uint64_t kind = c.r.below(20); // 0-7 IPv4, 8-15 IPv6, 16-17 link, 18 long chain, 19 five tags
  uint64_t tags = kind == 19 ? max_vlan_tags : c.r.pick({0, 0, 0, 0, 1, 1, 2, 2, 3, 4});
  Mac src = mac(c), dst = mac(c);
  PacketBuilder b;
  b.eth(src, dst);
  tcf_flow_key &key = base.expected.key;
  key.ifindex = test_ifindex;
  base.expected.ports_known = true;
  std::memcpy(key.addr[0], src.data(), 6);
  std::memcpy(key.addr[1], dst.data(), 6);
  for (uint64_t i = 0; i < tags; i++) {
    uint16_t id = c.r.chance(0.7) ? c.pools.vlans[c.r.below(c.pools.vlans.size())]
                                  : uint16_t(c.r.below(4096)),
             tpid = i == 0 && c.r.chance(0.5) ? 0x88a8 : 0x8100;
    b.vlan(id, tpid);
    if (i < 2) // the flow key keeps the outer two ids
      key.vlan[i] = id;
    base.how += fmt::format(" vlan {}/0x{:04x}", id, tpid);
  }
  base.l3 = eth_hlen + 4 * tags;
  if (kind == 19) {
    uint16_t tpid = c.r.chance(0.5) ? 0x88a8 : 0x8100;
    b.vlan(uint16_t(c.r.below(4096)), tpid);
    b.ipv4(text4(ip4(c)), text4(ip4(c))).udp(port(c), port(c)).payload(payload_len(c));
    key.kind = TCF_KIND_LINK;
    key.ethertype = tpid;
    base.how += " tag beyond those followed";
  } else if (kind < 8) {
    ipv4_base(c, b, base);
  } else if (kind < 16) {
    ipv6_base(c, b, base);
  } else if (kind < 18) {
    link_base(c, b, base);
  } else {
    ipv6_long_chain(c, b, base);
  }
  if (base.data.empty())
    base.data = b.build();
  base.unpadded = base.data.size();
  base.expected.bytes = base.ip ? base.unpadded - base.l3 : base.unpadded;
  return base;
}

// ---------------------------------------------------------------- invalid IP headers

// Breaks the IP header so that the frame must be malformed; false when this
// frame cannot take the chosen break.
bool invalidate_ipv4(Ctx &c, Base &base, RunOpts &opts) {
  Bytes &d = base.data;
  size_t l3 = base.l3, avail = d.size() - l3, ihl = (d[l3] & 0x0f) * 4u;
  bool gso_ok = true;
  switch (c.r.below(6)) {
  case 0:
    d[l3] = uint8_t(0x40 | c.r.below(5));
    base.how += " | ihl < 5";
    break;
  case 1:
    d[l3] = uint8_t(((4 + c.r.range(1, 15)) % 16) << 4 | (d[l3] & 0x0f));
    base.how += fmt::format(" | version {}", d[l3] >> 4);
    break;
  case 2:
    put16(d, l3 + 2, uint16_t(c.r.range(avail + 1, 0xffff)));
    gso_ok = false;
    base.how += " | total length beyond the frame";
    break;
  case 3:
    put16(d, l3 + 2, uint16_t(c.r.range(1, ihl - 1)));
    gso_ok = false;
    base.how += " | total length below the header length";
    break;
  case 4:
    put16(d, l3 + 2, 0);
    gso_ok = false;
    base.how += " | total length 0";
    break;
  default:
    // Behind a tag, or inside the options: frames test_run takes.
    if (l3 == eth_hlen && ihl <= 20)
      return false;
    d.resize(l3 + (l3 == eth_hlen ? c.r.range(20, ihl - 1) : c.r.below(ihl)));
    base.how += fmt::format(" | cut to {} inside the header", d.size());
  }
  if (!gso_ok)
    opts.gso_segs = opts.gso_size = 0;
  base.must = Must::malformed_ipv4;
  return true;
}

bool invalidate_ipv6(Ctx &c, Base &base, RunOpts &opts) {
  Bytes &d = base.data;
  size_t l3 = base.l3, avail = d.size() - l3;
  switch (c.r.below(3)) {
  case 0:
    d[l3] = uint8_t(((6 + c.r.range(1, 15)) % 16) << 4 | (d[l3] & 0x0f));
    base.how += fmt::format(" | version {}", d[l3] >> 4);
    break;
  case 1:
    put16(d, l3 + 4, uint16_t(c.r.range(avail - 40 + 1, 0xffff)));
    opts.gso_segs = opts.gso_size = 0;
    base.how += " | payload length beyond the frame";
    break;
  default:
    if (l3 == eth_hlen)
      return false;
    d.resize(l3 + c.r.below(40));
    base.how += fmt::format(" | cut to {} inside the header", d.size());
  }
  base.must = Must::malformed_ipv6;
  return true;
}

// ---------------------------------------------------------------- mutations

using Mutation = bool (*)(Ctx &, Base &);

bool cut_anywhere(Ctx &c, Base &base) {
  base.data.resize(c.r.below(base.data.size() + 1));
  base.how += fmt::format(" | cut to {}", base.data.size());
  return true;
}

bool cut_in_headers(Ctx &c, Base &base) {
  size_t end = std::min(base.data.size(), std::max(base.l4, base.l3) + 24);
  base.data.resize(c.r.range(std::min(end, base.l3 - 4), end));
  base.how += fmt::format(" | cut to {}", base.data.size());
  return true;
}

bool flip_bytes(Ctx &c, Base &base, size_t end) {
  if (end == 0)
    return false;
  uint64_t n = c.r.range(1, 6);
  for (uint64_t i = 0; i < n; i++) {
    size_t at = c.r.below(end);
    base.data[at] = c.r.chance(0.5) ? c.r.byte() : uint8_t(base.data[at] ^ (1 << c.r.below(8)));
    base.how += fmt::format(" | byte {}", at);
  }
  return true;
}

bool flip_anywhere(Ctx &c, Base &base) { return flip_bytes(c, base, base.data.size()); }

bool flip_in_headers(Ctx &c, Base &base) {
  return flip_bytes(c, base, std::min(base.data.size(), std::max(base.l4, base.l3) + 40));
}

// A length field set to a value near a boundary, or anywhere.
uint16_t bogus_length(Ctx &c, size_t avail) {
  int64_t near[] = {
      0, 1, 7, 8, 19, 20, 39, 40, int64_t(avail) - 1, int64_t(avail), int64_t(avail) + 1, 0xffff};
  return c.r.chance(0.3) ? c.r.u16() : uint16_t(std::clamp<int64_t>(c.r.pick(near), 0, 0xffff));
}

bool bogus_ihl(Ctx &c, Base &base) {
  if (base.ip != 4 || base.data.size() <= base.l3)
    return false;
  base.data[base.l3] = uint8_t((base.data[base.l3] & 0xf0) | c.r.below(16));
  base.how += fmt::format(" | ihl {}", base.data[base.l3] & 0x0f);
  return true;
}

bool bogus_ip_length(Ctx &c, Base &base) {
  if (!base.ip)
    return false;
  uint16_t len = bogus_length(c, base.data.size() - std::min(base.data.size(), base.l3));
  put16(base.data, base.l3 + (base.ip == 4 ? 2 : 4), len);
  base.how += fmt::format(" | {} {}", base.ip == 4 ? "total length" : "payload length", len);
  return true;
}

bool bogus_l4_length(Ctx &c, Base &base) {
  if (!base.l4 || base.data.size() < base.l4 + 14)
    return false;
  size_t avail = base.data.size() - base.l4;
  switch (base.proto) {
  case IPPROTO_UDP:
  case IPPROTO_UDPLITE:
    put16(base.data, base.l4 + 4, bogus_length(c, avail));
    base.how += fmt::format(" | udp length {}", get16(base.data, base.l4 + 4));
    return true;
  case IPPROTO_TCP:
    base.data[base.l4 + 12] = uint8_t(c.r.below(16) << 4 | (base.data[base.l4 + 12] & 0x0f));
    base.how += fmt::format(" | tcp doff {}", base.data[base.l4 + 12] >> 4);
    return true;
  case IPPROTO_DCCP:
    base.data[base.l4 + 4] = c.r.chance(0.5) ? uint8_t(c.r.below(8)) : c.r.byte();
    base.how += fmt::format(" | dccp doff {}", base.data[base.l4 + 4]);
    return true;
  }
  return false;
}

bool bogus_ext_header(Ctx &c, Base &base) {
  if (base.ext.empty())
    return false;
  size_t at = base.ext[c.r.below(base.ext.size())];
  if (at + 2 > base.data.size())
    return false;
  if (c.r.chance(0.5)) {
    base.data[at + 1] = c.r.byte();
    base.how += fmt::format(" | ext at {} length {}", at, base.data[at + 1]);
  } else {
    // Points at a header of its own type (the type is in the previous header).
    static constexpr uint8_t types[] = {0, 43, 44, 51, 60};
    base.data[at] = c.r.pick(types);
    base.how += fmt::format(" | ext at {} next {}", at, base.data[at]);
  }
  return true;
}

// The rest of the IPv6 frame becomes 8-byte headers of one type that each
// name the same type next: a chain to the end of the frame.
bool ext_loop(Ctx &c, Base &base) {
  static constexpr uint8_t types[] = {0, 43, 60};
  if (base.ip != 6 || base.data.size() < base.l3 + 48)
    return false;
  uint8_t type = c.r.pick(types), len8 = uint8_t(c.r.chance(0.8) ? 0 : c.r.below(4));
  base.data[base.l3 + 6] = type;
  for (size_t at = base.l3 + 40; at + 2 <= base.data.size(); at += (len8 + 1) * 8u) {
    base.data[at] = type;
    base.data[at + 1] = len8;
  }
  base.how += fmt::format(" | loop of type {} len8 {}", type, len8);
  return true;
}

bool bogus_next_header(Ctx &c, Base &base) {
  static constexpr uint8_t types[] = {0, 43, 44, 51, 59, 60, 6, 17, 58, 1, 132, 33, 136};
  if (!base.ip || base.data.size() < base.l3 + 10)
    return false;
  uint8_t proto = c.r.chance(0.8) ? c.r.pick(types) : c.r.byte();
  base.data[base.l3 + (base.ip == 4 ? 9 : 6)] = proto;
  base.how += fmt::format(" | protocol {}", proto);
  return true;
}

bool bogus_fragment(Ctx &c, Base &base) {
  if (base.ip != 4 || base.data.size() < base.l3 + 8)
    return false;
  uint16_t v = c.r.chance(0.5) ? uint16_t(c.r.below(2) << 13 | c.r.below(3)) : c.r.u16();
  put16(base.data, base.l3 + 6, v);
  base.how += fmt::format(" | frag field 0x{:04x}", v);
  return true;
}

bool bogus_version(Ctx &c, Base &base) {
  if (!base.ip || base.data.size() <= base.l3)
    return false;
  base.data[base.l3] = uint8_t(c.r.below(16) << 4 | (base.data[base.l3] & 0x0f));
  base.how += fmt::format(" | version {}", base.data[base.l3] >> 4);
  return true;
}

uint16_t interesting_type(Ctx &c) {
  static constexpr uint16_t types[] = {0x0800, 0x86dd, 0x8100, 0x88a8, 0x0806, 0x88cc,
                                       0x05ff, 0x0600, 0x0000, 0x0042, 0xffff, 0x9100};
  return c.r.chance(0.8) ? c.r.pick(types) : c.r.u16();
}

bool bogus_ethertype(Ctx &c, Base &base) {
  size_t at = c.r.chance(0.5) ? base.l3 - 2 : 12 + 4 * c.r.below((base.l3 - 12) / 4 + 1);
  if (at + 2 > base.data.size())
    return false;
  put16(base.data, at, interesting_type(c));
  base.how += fmt::format(" | type at {} 0x{:04x}", at, get16(base.data, at));
  return true;
}

void shift_offsets(Base &base, int64_t by) {
  base.l3 = size_t(int64_t(base.l3) + by);
  if (base.l4)
    base.l4 = size_t(int64_t(base.l4) + by);
  for (size_t &e : base.ext)
    e = size_t(int64_t(e) + by);
}

bool push_tag(Ctx &c, Base &base) {
  if (base.data.size() < 14)
    return false;
  static constexpr uint16_t tpids[] = {0x8100, 0x88a8, 0x9100};
  uint16_t tpid = c.r.chance(0.9) ? c.r.pick(tpids) : interesting_type(c), tci = c.r.u16();
  Bytes tag = {uint8_t(tpid >> 8), uint8_t(tpid), uint8_t(tci >> 8), uint8_t(tci)};
  base.data.insert(base.data.begin() + 12, tag.begin(), tag.end());
  shift_offsets(base, 4);
  base.how += fmt::format(" | push tag 0x{:04x}/{}", tpid, tci & 0x0fff);
  return true;
}

bool pop_tag(Ctx &, Base &base) {
  if (base.l3 < eth_hlen + 4 || base.data.size() < 16)
    return false;
  base.data.erase(base.data.begin() + 12, base.data.begin() + 16);
  shift_offsets(base, -4);
  base.how += " | pop tag";
  return true;
}

bool append_garbage(Ctx &c, Base &base) {
  uint64_t n = c.r.range(1, 64);
  for (uint64_t i = 0; i < n; i++)
    base.data.push_back(c.r.byte());
  base.how += fmt::format(" | {} bytes appended", n);
  return true;
}

constexpr Mutation mutations[] = {
    cut_anywhere,    cut_in_headers,    flip_anywhere,   flip_in_headers,
    bogus_ihl,       bogus_ip_length,   bogus_l4_length, bogus_ext_header,
    ext_loop,        bogus_next_header, bogus_fragment,  bogus_version,
    bogus_ethertype, push_tag,          pop_tag,         append_garbage,
};

void mutate(Ctx &c, Base &base) {
  uint64_t want = c.r.range(1, 3), done = 0;
  for (int tries = 0; done < want && tries < 20; tries++)
    done += c.r.pick(mutations)(c, base);
  base.must = Must::anything;
}

// ---------------------------------------------------------------- frames

FuzzFrame random_frame(Ctx &c, RunOpts opts) {
  Bytes data(c.r.chance(0.5) ? c.r.below(80) : c.r.below(1600));
  for (auto &b : data)
    b = c.r.byte();
  std::string how = fmt::format("random {} bytes", data.size());
  for (uint64_t i = 0, tags = c.r.below(3); i < tags && data.size() >= 18; i++)
    put16(data, 12 + 4 * i, c.r.chance(0.5) ? 0x8100 : 0x88a8);
  if (c.r.chance(0.6) && data.size() >= 14) {
    size_t at = 12;
    while (at + 4 < data.size() && (get16(data, at) == 0x8100 || get16(data, at) == 0x88a8))
      at += 4;
    put16(data, at, interesting_type(c));
    how += fmt::format(", type at {} 0x{:04x}", at, get16(data, at));
  }
  return {data, opts, how};
}

FuzzFrame finish(Base base, RunOpts opts) {
  bool gso = is_super_packet(opts);
  if (base.may_pad && !gso && base.data.size() < 60 && base.must == Must::count &&
      base.data.size() == base.unpadded) {
    base.data.resize(60, 0);
    base.how += " padded";
  }
  if (base.expected.key.kind == TCF_KIND_LINK)
    base.expected.bytes = base.data.size();
  base.how += fmt::format("{} ({} bytes)",
                          gso ? fmt::format(" gso {}/{}", opts.gso_segs, opts.gso_size) : "",
                          base.data.size());
  return {std::move(base.data), opts, base.how.substr(1), base.must, base.expected};
}

} // namespace

FrameGenerator::FrameGenerator(uint64_t seed) : rng_(seed) {
  for (int i = 0; i < 3; i++) {
    Mac m;
    for (auto &b : m)
      b = rng_.byte();
    std::array<uint8_t, 16> a6;
    for (auto &b : a6)
      b = rng_.byte();
    pools_.macs.push_back(m);
    pools_.ipv4.push_back(rng_.u32());
    pools_.ipv6.push_back(a6);
    pools_.ports.push_back(rng_.u16());
    pools_.vlans.push_back(uint16_t(rng_.below(4096)));
  }
}

RunOpts FrameGenerator::next_opts() {
  RunOpts o;
  o.hook = rng_.chance(0.5) ? TCF_HOOK_INGRESS : TCF_HOOK_EGRESS;
  uint64_t roll = rng_.below(100);
  if (roll < 3) // idle beyond the timeouts: the next packet starts a new connection
    clock_ += rng_.range(2 * ms, 10 * ms);
  else if (roll < 5) // a clock that goes back
    clock_ -= std::min(clock_ - 1, rng_.range(1, 2 * ms));
  else
    clock_ += 1000;
  o.tstamp = clock_;
  if (rng_.chance(0.15)) {
    uint64_t r = rng_.below(10);
    o.gso_segs = uint32_t(r < 6   ? rng_.range(2, 8)
                          : r < 9 ? rng_.range(9, 64)
                                  : rng_.range(65, 65535));
    o.gso_size = uint32_t(rng_.below(65536));
  } else if (rng_.chance(0.03)) {
    o.gso_segs = 1; // one segment, with a stray gso_size
    o.gso_size = uint32_t(rng_.below(65536));
  }
  return o;
}

FuzzFrame FrameGenerator::make(RunOpts opts) {
  Ctx c{rng_, pools_};
  if (rng_.chance(0.04))
    return random_frame(c, opts);
  Base base = base_frame(c);
  if (rng_.chance(0.002) && base.data.size() <= 300) {
    // Every truncation of one frame, from 0 bytes to whole.
    for (size_t len = 0; len <= base.data.size(); len++)
      queued_.push_back({Bytes(base.data.begin(), base.data.begin() + len), next_opts(),
                         fmt::format("{} | sweep cut to {}", base.how.substr(1), len)});
    FuzzFrame first = std::move(queued_.front());
    queued_.pop_front();
    return first;
  }
  uint64_t roll = rng_.below(100);
  if (roll < 5 && base.must == Must::count && opts.gso_segs == 0) {
    // virtio or tap: gso_size without gso_segs; the segments follow from the payload.
    opts.gso_size = uint32_t(rng_.chance(0.5) ? rng_.range(1, 100) : rng_.range(101, 2000));
    return finish(base, opts);
  }
  if (roll < 15)
    return finish(base, opts);
  if (roll < 28 && base.must == Must::count && base.ip == 4 && invalidate_ipv4(c, base, opts))
    return finish(base, opts);
  if (roll < 28 && base.must == Must::count && base.ip == 6 && invalidate_ipv6(c, base, opts))
    return finish(base, opts);
  mutate(c, base);
  return finish(base, opts);
}

FuzzFrame FrameGenerator::next() {
  if (!queued_.empty()) {
    FuzzFrame f = std::move(queued_.front());
    queued_.pop_front();
    return f;
  }
  if (!recent_.empty() && rng_.chance(0.15)) {
    // A valid frame again (not GSO: it may be padded): the same flow grows,
    // or after idleness or a SYN following RST/FIN, a new connection starts.
    FuzzFrame f = recent_[rng_.below(recent_.size())];
    f.opts = next_opts();
    f.opts.gso_segs = f.opts.gso_size = 0;
    f.how = "again: " + f.how;
    return f;
  }
  FuzzFrame f = make(next_opts());
  if (f.must == Must::count) {
    recent_.push_back(f);
    if (recent_.size() > 8)
      recent_.pop_front();
  }
  return f;
}

std::string hex(const Bytes &frame, size_t max) {
  std::string text;
  size_t n = std::min(frame.size(), max);
  for (size_t i = 0; i < n; i++)
    text += fmt::format("{}{:02x}", i % 16 == 0 ? (i ? "\n  " : "  ") : " ", frame[i]);
  if (n < frame.size())
    text += fmt::format("\n  ... {} more bytes", frame.size() - n);
  return text;
}

} // namespace tcflows::test
