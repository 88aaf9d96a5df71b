// One fixture row per parser branch: Ethernet, VLAN tags, IPv4, IPv6 and its
// extension headers, transport headers, link-layer frames. Each row runs its
// frames on a reset program and checks the whole flow map and every counter.
#include "rows.h"

#include <bpf/bpf.h>
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cerrno>

using namespace tcflows;
using namespace tcflows::test;

namespace {

namespace tf = tcp_flags;

constexpr uint8_t hbh = IPPROTO_HOPOPTS, routing = IPPROTO_ROUTING, dstopts = IPPROTO_DSTOPTS;
// Extension headers beyond RFC 8200's, with the hop-by-hop layout.
constexpr uint8_t IPV6_MOBILITY = 135, IPV6_HIP = 139, IPV6_SHIM6 = 140;

std::vector<Row> l2_rows() {
  auto tcp_syn = [](PacketBuilder b) { return b.ipv4(a4, b4).tcp(1234, 80, tf::syn).payload(100); };
  Bytes triple = tcp_syn(PacketBuilder().eth().vlan(1).vlan(2).vlan(3)).build();
  Bytes four = tcp_syn(PacketBuilder().eth().vlan(1, 0x88a8).vlan(2).vlan(3).vlan(4)).build();
  Bytes five = tcp_syn(PacketBuilder().eth().vlan(1).vlan(2).vlan(3).vlan(4).vlan(5)).build();
  Bytes short_tag = PacketBuilder().eth(mac_a, mac_b, 0x8100).payload(2).build();
  // test_run refuses an IP EtherType without a whole IP header: behind a tag.
  Bytes short_ip = PacketBuilder().eth().vlan(1).ipv4(a4, b4).truncate(eth_len + 4).build();
  return {
      {"untagged", {tcp_syn(PacketBuilder().eth()).build()}, {fwd(tcp4(1234, 80), 20 + 20 + 100)}},
      {"802.1Q",
       {tcp_syn(PacketBuilder().eth().vlan(10)).build()},
       {fwd(with_vlan(tcp4(1234, 80), 10), 140)}},
      {"QinQ 802.1ad + 802.1Q",
       {tcp_syn(PacketBuilder().eth().vlan(100, 0x88a8).vlan(200)).build()},
       {fwd(with_vlan(tcp4(1234, 80), 100, 200), 140)}},
      {"two 802.1Q tags",
       {tcp_syn(PacketBuilder().eth().vlan(100).vlan(200)).build()},
       {fwd(with_vlan(tcp4(1234, 80), 100, 200), 140)}},
      {"three tags: the IP flow beneath, outer two ids",
       {triple},
       {fwd(with_vlan(tcp4(1234, 80), 1, 2), 140)}},
      {"four tags (802.1ad outside)", {four}, {fwd(with_vlan(tcp4(1234, 80), 1, 2), 140)}},
      {"five tags: beyond those followed, a link flow of the fifth tag's type",
       {five},
       {fwd(with_vlan(link_key(mac_a, mac_b, 0x8100), 1, 2), five.size())}},
      {"truncated VLAN tag", {short_tag}, {}, malformed(TCF_CTR_MAL_L2, short_tag)},
      {"IPv4 EtherType, no header", {short_ip}, {}, malformed(TCF_CTR_MAL_IPV4, short_ip)},
  };
}

Row ihl_row(uint8_t ihl) {
  return {fmt::format("IHL {}", ihl),
          {v4({.ihl = ihl}).udp(1000, 2000).payload(10).build()},
          {fwd(udp4(1000, 2000), ihl * 4u + 8 + 10)}};
}

std::vector<Row> ipv4_malformed_rows() {
  auto bad = [](const char *name, Bytes frame) {
    return Row{name, {frame}, {}, malformed(TCF_CTR_MAL_IPV4, frame)};
  };
  auto udp = [](Ipv4Opts opts) { return v4(opts).udp(1000, 2000).payload(10).build(); };
  return {
      bad("IHL 4", udp({.ihl = 4})),
      bad("IHL 0", udp({.ihl = 0})),
      bad("version 6 in an IPv4 frame", udp({.version = 6})),
      bad("total length beyond the frame", udp({.total_length = 20 + 8 + 10 + 1})),
      bad("total length below IHL", udp({.total_length = 19})),
      bad("total length below IHL 15", udp({.ihl = 15, .total_length = 40})),
      bad("total length 0", udp({.total_length = 0})),
      bad("frame ends inside the header (behind a tag: see below)",
          PacketBuilder().eth().vlan(1).ipv4(a4, b4).truncate(eth_len + 4 + 12).build()),
  };
}

std::vector<Row> ipv4_rows() {
  std::vector<Row> rows = ipv4_malformed_rows();
  for (uint8_t ihl = 6; ihl <= 15; ihl++)
    rows.push_back(ihl_row(ihl));
  rows.push_back({"Ethernet padding: UDP",
                  {v4().udp(1000, 2000).payload(4).pad_to(60).build()},
                  {fwd(udp4(1000, 2000), 20 + 8 + 4)}});
  rows.push_back({"Ethernet padding: TCP pure ACK",
                  {v4().tcp(1234, 80, tf::ack).pad_to(60).build()},
                  {fwd(tcp4(1234, 80), 20 + 20)}});
  return rows;
}

// The first fragment of a UDP datagram of 8 + 1472 + 100 bytes, and a later
// fragment (offset 1480) of a datagram of any protocol.
Bytes udp_first(uint16_t id) {
  return v4({.id = id, .more_fragments = true}).udp(1234, 53, 8 + 1472 + 100).payload(1472).build();
}
Bytes later(uint16_t id, uint8_t proto, size_t payload = 100) {
  return v4({.id = id, .frag_offset = 185}).ip_proto(proto).payload(payload).build();
}

std::vector<Row> ipv4_fragment_rows() {
  Bytes tcp_first =
      v4({.id = 9, .more_fragments = true}).tcp(1234, 80, tf::ack).payload(1460).build();
  Bytes echo_first = v4({.id = 13, .more_fragments = true}).icmp(8, 0, 77, 1).payload(1472).build();
  Bytes gre_first = v4({.id = 15, .more_fragments = true}).gre().payload(1476).build();
  auto frag = [](uint8_t proto) { return ip4_key(proto, a4, 0, b4, 0, TCF_KIND_FRAG); };
  auto echo = ip4_key(IPPROTO_ICMP, a4, 77, b4, 77, TCF_KIND_ICMP_ECHO);
  return {
      {"UDP first + later fragment",
       {udp_first(7), later(7, IPPROTO_UDP)},
       {{udp4(1234, 53), {2, 0}, {1500 + 120, 0}}}},
      {"TCP first + later fragment",
       {tcp_first, later(9, IPPROTO_TCP, 40)},
       {{tcp4(1234, 80), {2, 0}, {1500 + 60, 0}}}},
      {"later fragment, no first",
       {later(11, IPPROTO_UDP)},
       {fwd(frag(IPPROTO_UDP), 120)},
       {{TCF_CTR_FRAG_UNMATCHED, 1}}},
      {"later before first",
       {later(7, IPPROTO_UDP), udp_first(7)},
       {fwd(frag(IPPROTO_UDP), 120), fwd(udp4(1234, 53), 1500)},
       {{TCF_CTR_FRAG_UNMATCHED, 1}}},
      {"later of another datagram",
       {udp_first(7), later(8, IPPROTO_UDP)},
       {fwd(udp4(1234, 53), 1500), fwd(frag(IPPROTO_UDP), 120)},
       {{TCF_CTR_FRAG_UNMATCHED, 1}}},
      {"ICMP echo first + later fragment",
       {echo_first, later(13, IPPROTO_ICMP)},
       {{echo, {2, 0}, {1500 + 120, 0}}}},
      {"ICMP later fragment, no first",
       {later(14, IPPROTO_ICMP)},
       {fwd(frag(IPPROTO_ICMP), 120)},
       {{TCF_CTR_FRAG_UNMATCHED, 1}}},
      {"GRE first + later fragment",
       {gre_first, later(15, IPPROTO_GRE)},
       {{ip4_key(IPPROTO_GRE, a4, 0, b4, 0, TCF_KIND_IP), {2, 0}, {1500 + 120, 0}}}},
  };
}

// A middle fragment (more follow), offset 1480.
Bytes middle(uint16_t id, uint8_t proto) {
  return v4({.id = id, .frag_offset = 185, .more_fragments = true})
      .ip_proto(proto)
      .payload(1480)
      .build();
}

// The table of first fragments forgets: the last fragment removes its entry,
// and an entry older than 2 s (its last fragment lost) is not used, so that
// a datagram reusing the identification after it wraps does not join an
// old datagram's flow.
std::vector<Row> ipv4_fragment_age_rows() {
  constexpr uint64_t t0 = 10'000'000'000, s = 1'000'000'000;
  auto at = [](Bytes frame, uint64_t t) { return Frame(std::move(frame), {.tstamp = t}); };
  auto frag = ip4_key(IPPROTO_UDP, a4, 0, b4, 0, TCF_KIND_FRAG);
  return {
      {"first, middle, middle, last: one datagram",
       {udp_first(7), middle(7, IPPROTO_UDP), middle(7, IPPROTO_UDP), later(7, IPPROTO_UDP)},
       {{udp4(1234, 53), {4, 0}, {1500 * 3 + 120, 0}}}},
      {"after the last fragment, the identification is free: a later fragment is unmatched",
       {udp_first(7), later(7, IPPROTO_UDP), later(7, IPPROTO_UDP)},
       {{udp4(1234, 53), {2, 0}, {1500 + 120, 0}}, fwd(frag, 120)},
       {{TCF_CTR_FRAG_UNMATCHED, 1}}},
      {"a later fragment 1.9 s after its first joins it",
       {at(udp_first(7), t0), at(later(7, IPPROTO_UDP), t0 + 19 * s / 10)},
       {{udp4(1234, 53), {2, 0}, {1500 + 120, 0}}}},
      {"identification wrapped: a later fragment 3 s after an old first is unmatched",
       {at(udp_first(7), t0), at(later(7, IPPROTO_UDP), t0 + 3 * s),
        at(later(7, IPPROTO_UDP), t0 + 3 * s + 1000)},
       {fwd(udp4(1234, 53), 1500), {frag, {2, 0}, {240, 0}}},
       {{TCF_CTR_FRAG_UNMATCHED, 2}}},
      {"a new first fragment replaces an old one of the same identification",
       {at(udp_first(7), t0),
        at(v4({.id = 7, .more_fragments = true}).udp(999, 53, 1580).payload(1472).build(),
           t0 + 3 * s),
        at(later(7, IPPROTO_UDP), t0 + 3 * s + 1000)},
       {fwd(udp4(1234, 53), 1500), {udp4(999, 53), {2, 0}, {1500 + 120, 0}}}},
  };
}

TEST_CASE("Ethernet and VLAN tags") { check_rows(l2_rows()); }
TEST_CASE("IPv4 header: options, lengths, version, padding") { check_rows(ipv4_rows()); }
TEST_CASE("IPv4 fragments") { check_rows(ipv4_fragment_rows()); }
TEST_CASE("IPv4 fragments: the table ages and forgets") { check_rows(ipv4_fragment_age_rows()); }

std::vector<Row> ipv6_ext_rows() {
  auto tcp = [](PacketBuilder b) { return b.tcp(1234, 80, tf::syn).payload(10).build(); };
  auto chain = [](int n) {
    PacketBuilder b = v6().ipv6_ext(hbh);
    for (int i = 1; i < n; i++)
      b.ipv6_ext(dstopts);
    return b.tcp(1234, 80, tf::syn).payload(10).build();
  };
  Bytes nine = chain(9);
  Bytes cut_ext = v6().ipv6_ext(hbh).ip_proto(dstopts).payload(1).build();
  Bytes long_ext = patch(tcp(v6().ipv6_ext(dstopts)), eth_len + 40 + 1, {4});
  // Valid, but the transport header lies deeper than the parser goes (1024 bytes).
  Bytes deep = tcp(v6().ipv6_ext(hbh, 127).ipv6_ext(dstopts, 2));
  Bytes deep_l4 = tcp(v6().ipv6_ext(hbh, 127));
  constexpr uint64_t l4 = 20 + 10;
  return {
      {"no extension header", {tcp(v6())}, {fwd(tcp6(1234, 80), 40 + l4)}},
      {"hop-by-hop", {tcp(v6().ipv6_ext(hbh))}, {fwd(tcp6(1234, 80), 40 + 8 + l4)}},
      {"routing", {tcp(v6().ipv6_ext(routing, 2))}, {fwd(tcp6(1234, 80), 40 + 24 + l4)}},
      {"destination options",
       {tcp(v6().ipv6_ext(dstopts, 1))},
       {fwd(tcp6(1234, 80), 40 + 16 + l4)}},
      {"AH", {tcp(v6().ipv6_ah())}, {fwd(tcp6(1234, 80), 40 + 24 + l4)}},
      {"HBH, dest, routing, AH, dest",
       {tcp(v6().ipv6_ext(hbh).ipv6_ext(dstopts).ipv6_ext(routing).ipv6_ah().ipv6_ext(dstopts))},
       {fwd(tcp6(1234, 80), 40 + 8 + 8 + 8 + 24 + 8 + l4)}},
      {"Mobility header (135), payload TCP",
       {tcp(v6().ipv6_ext(IPV6_MOBILITY, 1))},
       {fwd(tcp6(1234, 80), 40 + 16 + l4)}},
      {"Mobility header alone: no next header (59)",
       {v6().ipv6_ext(IPV6_MOBILITY).ip_proto(59).build()},
       {fwd(ip6_key(59, a6, 0, b6, 0, TCF_KIND_IP), 40 + 8)}},
      {"HIP (139)", {tcp(v6().ipv6_ext(IPV6_HIP, 4))}, {fwd(tcp6(1234, 80), 40 + 40 + l4)}},
      {"Shim6 (140)", {tcp(v6().ipv6_ext(IPV6_SHIM6))}, {fwd(tcp6(1234, 80), 40 + 8 + l4)}},
      {"HBH, Mobility, HIP, Shim6, dest",
       {tcp(v6().ipv6_ext(hbh)
                .ipv6_ext(IPV6_MOBILITY)
                .ipv6_ext(IPV6_HIP)
                .ipv6_ext(IPV6_SHIM6)
                .ipv6_ext(dstopts))},
       {fwd(tcp6(1234, 80), 40 + 5 * 8 + l4)}},
      {"Shim6 before a fragment header",
       {v6().ipv6_ext(IPV6_SHIM6)
            .ipv6_frag(0, true, 3)
            .udp(1234, 53, 8 + 1000)
            .payload(500)
            .build(),
        v6().ipv6_ext(IPV6_SHIM6)
            .ipv6_frag(63, false, 3)
            .ip_proto(IPPROTO_UDP)
            .payload(508)
            .build()},
       {{udp6(1234, 53), {2, 0}, {40 + 8 + 8 + 8 + 500 + 40 + 8 + 8 + 508, 0}}}},
      {"chain of 8", {chain(8)}, {fwd(tcp6(1234, 80), 40 + 8 * 8 + l4)}},
      {"chain of 9", {nine}, {}, malformed(TCF_CTR_MAL_IPV6_EXT, nine)},
      {"truncated extension header", {cut_ext}, {}, malformed(TCF_CTR_MAL_IPV6_EXT, cut_ext)},
      {"extension header beyond the payload",
       {long_ext},
       {},
       malformed(TCF_CTR_MAL_IPV6_EXT, long_ext)},
      {"headers deeper than the parser goes", {deep}, {}, malformed(TCF_CTR_MAL_IPV6_EXT, deep)},
      {"transport header deeper than the parser goes",
       {deep_l4},
       {},
       malformed(TCF_CTR_MAL_IPV6_EXT, deep_l4)},
  };
}

Bytes udp6_first(uint32_t id) {
  return v6().ipv6_frag(0, true, id).udp(1234, 53, 8 + 1440 + 100).payload(1440).build();
}
Bytes later6(uint32_t id, uint8_t proto) {
  return v6().ipv6_frag(181, false, id).ip_proto(proto).payload(100).build();
}

std::vector<Row> ipv6_fragment_rows() {
  Bytes hbh_first =
      v6().ipv6_ext(hbh).ipv6_frag(0, true, 3).tcp(1234, 80, tf::ack).payload(1000).build();
  Bytes hbh_later =
      v6().ipv6_ext(hbh).ipv6_frag(128, false, 3).ip_proto(IPPROTO_TCP).payload(100).build();
  Bytes atomic = v6().ipv6_frag(0, false, 4).tcp(1234, 80, tf::syn).build();
  Bytes echo_first = v6().ipv6_frag(0, true, 5).icmpv6(128, 0, 9, 1).payload(1440).build();
  // Destination options in the fragmentable part: the later fragment's
  // fragment header names them, not UDP.
  Bytes dst_first = v6().ipv6_frag(0, true, 6)
                        .ipv6_ext(dstopts)
                        .udp(1234, 53, 8 + 1432 + 100)
                        .payload(1432)
                        .build();
  Bytes dst_later = v6().ipv6_frag(181, false, 6).ip_proto(dstopts).payload(100).build();
  auto frag = [](uint8_t proto) { return ip6_key(proto, a6, 0, b6, 0, TCF_KIND_FRAG); };
  auto echo = ip6_key(IPPROTO_ICMPV6, a6, 9, b6, 9, TCF_KIND_ICMP_ECHO);
  return {
      {"UDP first + later fragment",
       {udp6_first(0x1234), later6(0x1234, IPPROTO_UDP)},
       {{udp6(1234, 53), {2, 0}, {40 + 8 + 8 + 1440 + 40 + 8 + 100, 0}}}},
      {"later fragment, no first",
       {later6(0x99, IPPROTO_UDP)},
       {fwd(frag(IPPROTO_UDP), 148)},
       {{TCF_CTR_FRAG_UNMATCHED, 1}}},
      {"fragment header after hop-by-hop",
       {hbh_first, hbh_later},
       {{tcp6(1234, 80), {2, 0}, {40 + 8 + 8 + 20 + 1000 + 40 + 8 + 8 + 100, 0}}}},
      {"atomic fragment", {atomic}, {fwd(tcp6(1234, 80), 40 + 8 + 20)}},
      {"ICMPv6 echo first + later fragment",
       {echo_first, later6(5, IPPROTO_ICMPV6)},
       {{echo, {2, 0}, {40 + 8 + 8 + 1440 + 40 + 8 + 100, 0}}}},
      {"destination options after the fragment header",
       {dst_first, dst_later},
       {{udp6(1234, 53), {2, 0}, {40 + 8 + 8 + 8 + 1432 + 40 + 8 + 100, 0}}}},
  };
}

std::vector<Row> ipv6_length_rows() {
  auto bad = [](const char *name, tcf_counter reason, Bytes frame) {
    return Row{name, {frame}, {}, malformed(reason, frame)};
  };
  Bytes jumbo = v6({.payload_length = 0}).ipv6_ext(hbh).tcp(1234, 80, tf::ack).payload(100).build();
  jumbo = patch(jumbo, eth_len + 40 + 2, {0xc2, 4, 0, 0, 0, 8 + 20 + 100}); // Jumbo Payload option
  Bytes zero_tcp = v6({.payload_length = 0}).tcp(1234, 80, tf::ack).payload(100).build();
  Bytes no_next = v6({.next_header = 59}).payload(20).build();
  Bytes no_next_empty = v6({.next_header = 59}).build();
  auto other = [](uint8_t proto) { return ip6_key(proto, a6, 0, b6, 0, TCF_KIND_IP); };
  return {
      bad("payload length beyond the frame", TCF_CTR_MAL_IPV6,
          v6({.payload_length = 8 + 11}).udp(1000, 2000).payload(10).build()),
      bad("version 4 in an IPv6 frame", TCF_CTR_MAL_IPV6,
          v6({.version = 4}).udp(1000, 2000).payload(10).build()),
      bad("frame ends inside the header (behind a tag: see below)", TCF_CTR_MAL_IPV6,
          PacketBuilder().eth().vlan(1).ipv6(a6, b6).truncate(eth_len + 4 + 30).build()),
      bad("payload length 0 without hop-by-hop", TCF_CTR_MAL_L4, zero_tcp),
      {"Ethernet padding",
       {v6().udp(1000, 2000).payload(2).pad_to(80).build()},
       {fwd(udp6(1000, 2000), 40 + 8 + 2)}},
      {"jumbogram: payload length 0 with hop-by-hop",
       {jumbo},
       {fwd(tcp6(1234, 80), 40 + 8 + 20 + 100)}},
      {"no next header, 20 bytes", {no_next}, {fwd(other(59), 40 + 20)}},
      {"no next header, empty", {no_next_empty}, {fwd(other(59), 40)}},
  };
}

TEST_CASE("IPv6 extension headers") { check_rows(ipv6_ext_rows()); }
TEST_CASE("IPv6 fragments") { check_rows(ipv6_fragment_rows()); }
TEST_CASE("IPv6 lengths") { check_rows(ipv6_length_rows()); }

std::vector<Row> transport_rows() {
  auto key4 = [](uint8_t proto, uint16_t pa, uint16_t pb) {
    return ip4_key(proto, a4, pa, b4, pb);
  };
  auto key6 = [](uint8_t proto, uint16_t pa, uint16_t pb) {
    return ip6_key(proto, a6, pa, b6, pb);
  };
  return {
      {"TCP", {v4().tcp(40000, 443, tf::syn).build()}, {fwd(tcp4(40000, 443), 40)}},
      {"TCP with options",
       {v4().tcp(40000, 443, tf::syn, {.doff = 10}).build()},
       {fwd(tcp4(40000, 443), 20 + 40)}},
      {"UDP", {v4().udp(5353, 53).payload(10).build()}, {fwd(udp4(5353, 53), 38)}},
      {"UDP length below the IP payload",
       {v4().udp(5353, 53, 8 + 2).payload(10).build()},
       {fwd(udp4(5353, 53), 38)}},
      {"SCTP",
       {v4().sctp(36412, 38412).payload(16).build()},
       {fwd(key4(IPPROTO_SCTP, 36412, 38412), 20 + 12 + 16)}},
      {"DCCP",
       {v4().dccp(5004, 5005).payload(10).build()},
       {fwd(key4(IPPROTO_DCCP, 5004, 5005), 20 + 16 + 10)}},
      {"UDP-Lite",
       {v4().udplite(1000, 2000).payload(10).build()},
       {fwd(key4(IPPROTO_UDPLITE, 1000, 2000), 20 + 8 + 10)}},
      {"TCP over IPv6", {v6().tcp(40000, 443, tf::syn).build()}, {fwd(tcp6(40000, 443), 60)}},
      {"UDP over IPv6", {v6().udp(5353, 53).payload(10).build()}, {fwd(udp6(5353, 53), 58)}},
      {"SCTP over IPv6",
       {v6().sctp(2905, 2905).build()},
       {fwd(key6(IPPROTO_SCTP, 2905, 2905), 40 + 12)}},
      {"DCCP over IPv6",
       {v6().dccp(5004, 5005).build()},
       {fwd(key6(IPPROTO_DCCP, 5004, 5005), 40 + 16)}},
      {"UDP-Lite over IPv6",
       {v6().udplite(1000, 2000).build()},
       {fwd(key6(IPPROTO_UDPLITE, 1000, 2000), 40 + 8)}},
  };
}

std::vector<Row> transport_malformed_rows() {
  auto bad = [](const char *name, Bytes frame) {
    return Row{name, {frame}, {}, malformed(TCF_CTR_MAL_L4, frame)};
  };
  Bytes tcp = v4().tcp(1234, 80, tf::ack).payload(10).build();
  return {
      bad("TCP data offset 4", v4().tcp(1234, 80, tf::ack, {.doff = 4}).payload(10).build()),
      bad("TCP data offset beyond the packet", patch(tcp, eth_len + 20 + 12, {0xf0})),
      bad("TCP header truncated", v4().ip_proto(IPPROTO_TCP).payload(10).build()),
      bad("TCP header truncated, IPv6", v6().ip_proto(IPPROTO_TCP).payload(19).build()),
      bad("UDP length 7", v4().udp(1000, 2000, 7).payload(10).build()),
      bad("UDP length beyond the IP payload", v4().udp(1000, 2000, 8 + 11).payload(10).build()),
      bad("UDP header truncated", v4().ip_proto(IPPROTO_UDP).payload(4).build()),
      bad("SCTP header truncated", v4().ip_proto(IPPROTO_SCTP).payload(8).build()),
      bad("DCCP data offset 2", v4().dccp(1, 2, 2).payload(10).build()),
      bad("DCCP data offset beyond the packet", v4().dccp(1, 2, 10).payload(10).build()),
      bad("ICMP header truncated", v4().ip_proto(IPPROTO_ICMP).payload(4).build()),
      bad("ICMPv6 header truncated", v6().ip_proto(IPPROTO_ICMPV6).payload(7).build()),
  };
}

TEST_CASE("transport ports") { check_rows(transport_rows()); }
TEST_CASE("malformed transport headers") { check_rows(transport_malformed_rows()); }

std::vector<Row> icmp_rows() {
  auto echo4 = [](uint16_t id) {
    return ip4_key(IPPROTO_ICMP, a4, id, b4, id, TCF_KIND_ICMP_ECHO);
  };
  auto echo6 = ip6_key(IPPROTO_ICMPV6, a6, 5, b6, 5, TCF_KIND_ICMP_ECHO);
  constexpr uint64_t ping4 = 20 + 8 + 56, ping6 = 40 + 8 + 56;
  return {
      {"echo request + reply, same identifier",
       {v4().icmp(8, 0, 77, 1).payload(56).build(),
        v4_back().icmp(0, 0, 77, 1).payload(56).build()},
       {{echo4(77), {1, 1}, {ping4, ping4}}}},
      {"echo requests, different identifiers",
       {v4().icmp(8, 0, 77, 1).payload(56).build(), v4().icmp(8, 0, 78, 1).payload(56).build()},
       {fwd(echo4(77), ping4), fwd(echo4(78), ping4)}},
      {"destination unreachable from the higher address",
       {v4_back().icmp(3, 3).payload(28).build()},
       {rev(ip4_key(IPPROTO_ICMP, a4, 0, b4, 0x0303, TCF_KIND_ICMP), 20 + 8 + 28)}},
      {"time exceeded from the lower address",
       {v4().icmp(11, 0).payload(28).build()},
       {fwd(ip4_key(IPPROTO_ICMP, a4, 0x0b00, b4, 0, TCF_KIND_ICMP), 20 + 8 + 28)}},
      {"ICMPv6 echo request + reply",
       {v6().icmpv6(128, 0, 5, 1).payload(56).build(),
        v6_back().icmpv6(129, 0, 5, 1).payload(56).build()},
       {{echo6, {1, 1}, {ping6, ping6}}}},
      {"ICMPv6 neighbour solicitation",
       {v6().icmpv6(135, 0).payload(16).build()},
       {fwd(ip6_key(IPPROTO_ICMPV6, a6, 0x8700, b6, 0, TCF_KIND_ICMP), 40 + 8 + 16)}},
  };
}

std::vector<Row> other_ip_rows() {
  return {
      {"GRE",
       {v4().gre().payload(20).build()},
       {fwd(ip4_key(IPPROTO_GRE, a4, 0, b4, 0, TCF_KIND_IP), 20 + 4 + 20)}},
      {"ESP over IPv6",
       {v6().ip_proto(IPPROTO_ESP).payload(40).build()},
       {fwd(ip6_key(IPPROTO_ESP, a6, 0, b6, 0, TCF_KIND_IP), 40 + 40)}},
  };
}

TEST_CASE("ICMP and ICMPv6") { check_rows(icmp_rows()); }
TEST_CASE("other IP protocols") { check_rows(other_ip_rows()); }

std::vector<Row> link_rows() {
  Bytes arp = PacketBuilder().eth(mac_a, broadcast).arp("10.0.0.1", "10.0.0.2").pad_to(60).build();
  Bytes arp_vlan =
      PacketBuilder().eth(mac_a, broadcast).vlan(5).arp("10.0.0.1", "10.0.0.2").build();
  Bytes lldp = PacketBuilder().eth(mac_a, lldp_mac).lldp().build();
  Bytes stp = PacketBuilder().eth(mac_a, stp_mac).llc(0x42, 0x42).payload(35).pad_to(60).build();
  Bytes cdp = PacketBuilder().eth(mac_a, cdp_mac).snap({0, 0, 0x0c}, 0x2000).payload(30).build();
  Bytes ip_snap = PacketBuilder().eth().snap({0, 0, 0}, 0x0800).ipv4(a4, b4).udp(1, 2).build();
  Bytes other = PacketBuilder().eth(mac_a, mac_b, 0x88b5).payload(46).build();
  Bytes short_llc = PacketBuilder().eth(mac_a, stp_mac, 2).payload(2).build();
  Bytes short_snap = PacketBuilder().eth(mac_a, cdp_mac).llc(0xaa, 0xaa).payload(2).build();
  return {
      {"ARP", {arp}, {fwd(link_key(mac_a, broadcast, 0x0806), 60)}},
      {"ARP in 802.1Q", {arp_vlan}, {fwd(with_vlan(link_key(mac_a, broadcast, 0x0806), 5), 46)}},
      {"LLDP", {lldp}, {rev(link_key(lldp_mac, mac_a, 0x88cc), lldp.size())}},
      {"STP (802.2 LLC)", {stp}, {rev(link_key(stp_mac, mac_a, TCF_ETH_LLC, 0x4242), 60)}},
      {"CDP (SNAP)", {cdp}, {rev(link_key(cdp_mac, mac_a, 0x2000, 0xaaaa), cdp.size())}},
      {"IPv4 in SNAP: a link flow, never IP",
       {ip_snap},
       {fwd(link_key(mac_a, mac_b, 0x0800, 0xaaaa), ip_snap.size())}},
      {"unknown EtherType", {other}, {fwd(link_key(mac_a, mac_b, 0x88b5), 60)}},
      {"truncated LLC", {short_llc}, {}, malformed(TCF_CTR_MAL_L2, short_llc)},
      {"truncated SNAP", {short_snap}, {}, malformed(TCF_CTR_MAL_L2, short_snap)},
  };
}

TEST_CASE("link-layer frames") { check_rows(link_rows()); }

TEST_CASE("frames test_run refuses") {
  // The kernel rejects (-EINVAL) frames shorter than an Ethernet header, and
  // frames whose EtherType is IPv4 or IPv6 without a whole IP header, before
  // the program runs. The program's paths for them are reached here only
  // behind a VLAN tag (rows above) and otherwise only from a real device.
  Harness &h = shared_harness();
  struct Refused {
    const char *name;
    Bytes frame;
  };
  const Refused rows[] = {
      {"13 bytes", Bytes(13, 0)},
      {"IPv4 EtherType, 19 bytes", PacketBuilder().eth(mac_a, mac_b, 0x0800).payload(19).build()},
      {"IPv6 EtherType, 39 bytes", PacketBuilder().eth(mac_a, mac_b, 0x86dd).payload(39).build()},
  };
  for (const Refused &row : rows) {
    INFO(std::string(row.name));
    __sk_buff ctx{};
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = row.frame.data(),
                .data_size_in = uint32_t(row.frame.size()), .ctx_in = &ctx,
                .ctx_size_in = sizeof(ctx));
    CHECK(bpf_prog_test_run_opts(h.program().ingress_fd(), &opts) == -EINVAL);
  }
}

} // namespace
