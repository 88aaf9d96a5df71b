// Super-packets beyond plain TCP and UDP GSO: those virtio and tap hand over
// with gso_segs 0 (the segments follow from gso_size and the payload), and
// those of tunnels, whose every segment repeats the tunnel's headers and the
// inner packet's besides the outer ones (VXLAN, Geneve, GRE, IPIP, IPv6 in IP).
#include "rows.h"

#include <doctest/doctest.h>

using namespace tcflows;
using namespace tcflows::test;

namespace {

namespace tf = tcp_flags;

constexpr TcpOpts ts{.doff = 8}; // TCP with 12 bytes of options: 32-byte headers
constexpr std::string_view in_a = "192.168.7.1", in_b = "192.168.7.2";
constexpr std::string_view in6_a = "fd00:7::1", in6_b = "fd00:7::2";

RunOpts gso(uint32_t segs, uint32_t size) { return {.gso_segs = segs, .gso_size = size}; }
const CounterValues one_gso = {{TCF_CTR_GSO_FRAMES, 1}};

// One super-packet of `pkts` segments, `ip_bytes` long, each further segment
// repeating `hdr` bytes of headers.
ExpectedFlow super(const tcf_flow_key &key, uint64_t pkts, uint64_t ip_bytes, uint64_t hdr) {
  return {key, {pkts, 0}, {ip_bytes + (pkts - 1) * hdr, 0}};
}

std::vector<Row> virtio_rows() {
  Bytes tcp3000 = v4().tcp(1234, 80, tf::ack, ts).payload(3000).build();
  Bytes tcp2999 = v4().tcp(1234, 80, tf::ack, ts).payload(2999).build();
  Bytes udp_v6 = v6().udp(1000, 2000).payload(2500).build();
  constexpr uint64_t h4 = 20 + 32, h6u = 40 + 8;
  return {
      {"gso_segs 0: 3000 bytes of payload in segments of 1000",
       {{tcp3000, gso(0, 1000)}},
       {super(tcp4(1234, 80), 3, h4 + 3000, h4)},
       one_gso},
      {"gso_segs 0: a last segment that is not full",
       {{tcp2999, gso(0, 1000)}},
       {super(tcp4(1234, 80), 3, h4 + 2999, h4)},
       one_gso},
      {"gso_segs 0: segments of 1 byte",
       {{v4().tcp(1234, 80, tf::ack, ts).payload(7).build(), gso(0, 1)}},
       {super(tcp4(1234, 80), 7, h4 + 7, h4)},
       one_gso},
      {"gso_segs 0: a payload no larger than gso_size is one packet",
       {{tcp3000, gso(0, 3000)}},
       {super(tcp4(1234, 80), 1, h4 + 3000, h4)},
       one_gso},
      {"gso_segs 0: UDP over IPv6 (UDP segmentation), 1000 + 1000 + 500",
       {{udp_v6, gso(0, 1000)}},
       {super(udp6(1000, 2000), 3, h6u + 2500, h6u)},
       one_gso},
      {"gso_segs 0 and gso_size 0: not GSO",
       {{tcp3000, gso(0, 0)}},
       {fwd(tcp4(1234, 80), h4 + 3000)}},
      {"gso_segs given: they count, not gso_size",
       {{tcp3000, gso(4, 1000)}},
       {super(tcp4(1234, 80), 4, h4 + 3000, h4)},
       one_gso},
  };
}

TEST_CASE("GSO with gso_segs 0 (virtio, tap): segments from gso_size") {
  check_rows(virtio_rows());
}

// Outer Ethernet + IPv4 a4 -> b4 + UDP to `port` + VXLAN + inner Ethernet.
PacketBuilder vxlan4(uint16_t port = 4789) {
  return v4().udp(40000, port).vxlan(42).eth(mac_b, mac_a);
}

std::vector<Row> udp_tunnel_rows() {
  constexpr uint64_t outer = 20 + 8, vx = 8 + 14;
  constexpr uint64_t in4 = 20 + 32, in6 = 40 + 8;
  Bytes vx_tcp = vxlan4().ipv4(in_a, in_b).tcp(1234, 80, tf::ack, ts).payload(3000).build();
  Bytes vx_linux = vxlan4(8472).ipv4(in_a, in_b).tcp(1234, 80, tf::ack, ts).payload(3000).build();
  Bytes vx_udp6 = vxlan4().ipv6(in6_a, in6_b).udp(5000, 6000).payload(2000).build();
  Bytes gnv = v4().udp(40000, 6081)
                  .geneve(42, 2)
                  .eth(mac_b, mac_a)
                  .ipv4(in_a, in_b)
                  .tcp(1234, 80, tf::ack, ts)
                  .payload(3000)
                  .build();
  Bytes gnv_ip = v4().udp(40000, 6081)
                     .geneve(42, 0, 0x86dd)
                     .ipv6(in6_a, in6_b)
                     .udp(5000, 6000)
                     .payload(2000)
                     .build();
  Bytes vx6 = v6().udp(40000, 4789)
                  .vxlan(42)
                  .eth(mac_b, mac_a)
                  .ipv4(in_a, in_b)
                  .tcp(1234, 80, tf::ack, ts)
                  .payload(3000)
                  .build();
  uint64_t vx_tcp_len = outer + vx + in4 + 3000;
  return {
      {"VXLAN, inner TCP over IPv4, 3 segments",
       {{vx_tcp, gso(3, 1000)}},
       {super(udp4(40000, 4789), 3, vx_tcp_len, outer + vx + in4)},
       one_gso},
      {"VXLAN, gso_segs 0: segments from the inner payload",
       {{vx_tcp, gso(0, 1000)}},
       {super(udp4(40000, 4789), 3, vx_tcp_len, outer + vx + in4)},
       one_gso},
      {"VXLAN on the Linux port 8472",
       {{vx_linux, gso(3, 1000)}},
       {super(udp4(40000, 8472), 3, vx_tcp_len, outer + vx + in4)},
       one_gso},
      {"VXLAN, inner UDP over IPv6",
       {{vx_udp6, gso(2, 1000)}},
       {super(udp4(40000, 4789), 2, outer + vx + in6 + 2000, outer + vx + in6)},
       one_gso},
      {"VXLAN over IPv6",
       {{vx6, gso(3, 1000)}},
       {super(udp6(40000, 4789), 3, 40 + 8 + vx + in4 + 3000, 40 + 8 + vx + in4)},
       one_gso},
      {"VXLAN, not a super-packet: one packet", {vx_tcp}, {fwd(udp4(40000, 4789), vx_tcp_len)}},
      {"Geneve with 8 bytes of options, Ethernet inside",
       {{gnv, gso(3, 1000)}},
       {super(udp4(40000, 6081), 3, outer + 16 + 14 + in4 + 3000, outer + 16 + 14 + in4)},
       one_gso},
      {"Geneve, IPv6 inside",
       {{gnv_ip, gso(2, 1000)}},
       {super(udp4(40000, 6081), 2, outer + 8 + in6 + 2000, outer + 8 + in6)},
       one_gso},
  };
}

std::vector<Row> udp_not_tunnel_rows() {
  constexpr uint64_t outer = 20 + 8, vx = 8 + 14;
  // The same bytes to another port: UDP segmentation of 1000-byte datagrams.
  Bytes other_port = v4().udp(40000, 4790)
                         .vxlan(42)
                         .eth(mac_b, mac_a)
                         .ipv4(in_a, in_b)
                         .tcp(1234, 80, tf::ack, ts)
                         .payload(3000)
                         .build();
  Bytes vx_arp = vxlan4().arp("10.1.1.1", "10.1.1.2").payload(1000).build();
  Bytes vx_cut = vxlan4().ipv4(in_a, in_b).truncate(eth_len + outer + vx + 10).build();
  Bytes gnv_v1 = patch(v4().udp(40000, 6081)
                           .geneve(42)
                           .eth(mac_b, mac_a)
                           .ipv4(in_a, in_b)
                           .tcp(1234, 80, tf::ack, ts)
                           .payload(3000)
                           .build(),
                       eth_len + outer, {0x40});
  uint64_t len = other_port.size() - eth_len;
  return {
      {"UDP to another port: its own headers only",
       {{other_port, gso(3, 1000)}},
       {super(udp4(40000, 4790), 3, len, outer)},
       one_gso},
      {"VXLAN carrying ARP: outer headers only",
       {{vx_arp, gso(2, 600)}},
       {super(udp4(40000, 4789), 2, vx_arp.size() - eth_len, outer)},
       one_gso},
      {"VXLAN cut inside the inner IPv4 header: outer headers only",
       {{vx_cut, gso(2, 600)}},
       {super(udp4(40000, 4789), 2, vx_cut.size() - eth_len, outer)},
       one_gso},
      {"Geneve version 1: outer headers only",
       {{gnv_v1, gso(3, 1000)}},
       {super(udp4(40000, 6081), 3, gnv_v1.size() - eth_len, outer)},
       one_gso},
  };
}

TEST_CASE("UDP tunnels: every segment repeats the inner headers") {
  check_rows(udp_tunnel_rows());
  check_rows(udp_not_tunnel_rows());
}

tcf_flow_key ip4_proto(uint8_t proto) { return ip4_key(proto, a4, 0, b4, 0, TCF_KIND_IP); }

std::vector<Row> ip_tunnel_rows() {
  constexpr uint64_t in4 = 20 + 32, in6 = 40 + 8;
  auto inner4 = [](PacketBuilder b) {
    return b.ipv4(in_a, in_b).tcp(1234, 80, tf::ack, ts).payload(3000).build();
  };
  Bytes gre = inner4(v4().gre(0x0800));
  // Checksum, key and sequence number present: 4 + 12 bytes.
  Bytes gre_cks = inner4(
      v4().ip_proto(IPPROTO_GRE).bytes({0xb0, 0, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 1}));
  Bytes gretap = inner4(v4().gre(0x6558).eth(mac_b, mac_a));
  Bytes gre6 = inner4(v6().gre(0x0800));
  Bytes ipip = inner4(v4().ip_proto(IPPROTO_IPIP));
  Bytes six_in_four =
      v4().ip_proto(IPPROTO_IPV6).ipv6(in6_a, in6_b).udp(5000, 6000).payload(2000).build();
  Bytes pptp = patch(gre, eth_len + 20 + 1, {0x01}); // GRE version 1
  return {
      {"GRE, IPv4 inside",
       {{gre, gso(3, 1000)}},
       {super(ip4_proto(IPPROTO_GRE), 3, 20 + 4 + in4 + 3000, 20 + 4 + in4)},
       one_gso},
      {"GRE with checksum, key and sequence number",
       {{gre_cks, gso(0, 1000)}},
       {super(ip4_proto(IPPROTO_GRE), 3, 20 + 16 + in4 + 3000, 20 + 16 + in4)},
       one_gso},
      {"GRE, Ethernet inside (gretap)",
       {{gretap, gso(3, 1000)}},
       {super(ip4_proto(IPPROTO_GRE), 3, 20 + 4 + 14 + in4 + 3000, 20 + 4 + 14 + in4)},
       one_gso},
      {"GRE over IPv6",
       {{gre6, gso(3, 1000)}},
       {super(ip6_key(IPPROTO_GRE, a6, 0, b6, 0, TCF_KIND_IP), 3, 40 + 4 + in4 + 3000,
              40 + 4 + in4)},
       one_gso},
      {"GRE version 1 (PPTP): outer headers only",
       {{pptp, gso(3, 1000)}},
       {super(ip4_proto(IPPROTO_GRE), 3, 20 + 4 + in4 + 3000, 20)},
       one_gso},
      {"IPIP",
       {{ipip, gso(3, 1000)}},
       {super(ip4_proto(IPPROTO_IPIP), 3, 20 + in4 + 3000, 20 + in4)},
       one_gso},
      {"IPv6 in IPv4 (sit)",
       {{six_in_four, gso(2, 1000)}},
       {super(ip4_proto(IPPROTO_IPV6), 2, 20 + in6 + 2000, 20 + in6)},
       one_gso},
  };
}

TEST_CASE("IP tunnels: every segment repeats the inner headers") { check_rows(ip_tunnel_rows()); }

} // namespace

namespace {

// Frames a GRO capture holds, longer than a test run takes (a page): tcflows
// read runs their first max_frame bytes and gives their whole length in cb.
constexpr size_t max_frame = 3584;

Bytes cut(Bytes frame) {
  frame.resize(max_frame);
  return frame;
}

std::vector<Row> long_frame_rows() {
  Bytes tcp60k = v4().tcp(1234, 80, tf::ack).payload(60000 - eth_len - 40).build();
  Bytes tcp9k_v6 = v6().tcp(1234, 80, tf::ack).payload(9000 - eth_len - 60).build();
  Bytes udp9k = v4().udp(1000, 2000).payload(9000 - eth_len - 28).build();
  Bytes tcp1k = v4().tcp(1234, 80, tf::ack).payload(1000).build();
  return {
      {"offline: 60 000 bytes cut to a page, their length given: counted whole",
       {{cut(tcp60k), {.frame_len = 60000}}},
       {fwd(tcp4(1234, 80), 60000 - eth_len)}},
      {"offline: IPv6 TCP, 9 000 bytes",
       {{cut(tcp9k_v6), {.frame_len = 9000}}},
       {fwd(tcp6(1234, 80), 9000 - eth_len)}},
      {"offline: UDP, 9 000 bytes",
       {{cut(udp9k), {.frame_len = 9000}}},
       {fwd(udp4(1000, 2000), 9000 - eth_len)}},
      {"offline: cut without its length: shorter than its IP header says",
       {{cut(tcp60k)}},
       {},
       malformed(TCF_CTR_MAL_IPV4, cut(tcp60k))},
      {"offline: a length shorter than the frame is not read",
       {{tcp1k, {.frame_len = 100}}},
       {fwd(tcp4(1234, 80), tcp1k.size() - eth_len)}},
  };
}

} // namespace

TEST_CASE("offline, a frame cut to a page counts whole with its length") {
  check_rows(long_frame_rows());
}

TEST_CASE("live, cb is not read: a cut frame stays short of its IP length") {
  ProgramConfig live = test_config();
  live.kernel.flags = 0;
  Harness h(live);
  Bytes frame = cut(v4().tcp(1234, 80, tf::ack).payload(60000 - eth_len - 40).build());
  h.run(frame, {.frame_len = 60000});
  check_state(h, {}, malformed(TCF_CTR_MAL_IPV4, frame));
}
