// Frames through real tun and tap devices, in a network namespace of the
// test's own: what bpf_prog_test_run cannot show. test_run always hands the
// program an Ethernet frame with the network header 14 bytes in; a tun device
// (like WireGuard, PPP and IP tunnels) hands it the packet from the network
// header on, and virtio/tap GSO packets with gso_segs 0. Frames written to the
// device's file descriptor pass TC ingress; frames sent through a packet
// socket on it pass TC egress. Each row checks the whole flow map and every
// counter, as the test_run rows do.
#include "rows.h"

#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

using namespace tcflows;
using namespace tcflows::test;

namespace {

namespace tf = tcp_flags;

// The test thread in a new network namespace, and back in its own after.
// IPv6 is off there, so that devices coming up send nothing of their own.
class PrivateNetns {
public:
  PrivateNetns() : home_(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) {
    REQUIRE_MESSAGE(home_ >= 0, "cannot open the network namespace: ", strerror(errno));
    REQUIRE_MESSAGE(::unshare(CLONE_NEWNET) == 0, "unshare(CLONE_NEWNET): ", strerror(errno));
    for (const char *conf : {"all", "default"}) {
      std::string path = std::string("/proc/sys/net/ipv6/conf/") + conf + "/disable_ipv6";
      int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
      REQUIRE_MESSAGE((fd >= 0 && ::write(fd, "1", 1) == 1), "cannot write ", path);
      ::close(fd);
    }
  }
  ~PrivateNetns() {
    ::setns(home_, CLONE_NEWNET);
    ::close(home_);
  }

private:
  int home_;
};

// A tun or tap device that lives as long as its file descriptor, up, with the
// harness program attached to its clsact hooks.
class TunDevice {
public:
  // The harness program's filters go after `before` (a foreign program that
  // runs first on ingress), when given.
  TunDevice(const char *name, int flags, Harness &h, int before = -1) {
    fd_ = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    REQUIRE_MESSAGE(fd_ >= 0, "cannot open /dev/net/tun: ", strerror(errno));
    ifreq req{};
    std::strncpy(req.ifr_name, name, IFNAMSIZ - 1);
    req.ifr_flags = short(flags);
    REQUIRE_MESSAGE(::ioctl(fd_, TUNSETIFF, &req) == 0, "TUNSETIFF: ", strerror(errno));
    int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(::ioctl(sock, SIOCGIFINDEX, &req) == 0);
    ifindex_ = req.ifr_ifindex;
    REQUIRE(::ioctl(sock, SIOCGIFFLAGS, &req) == 0);
    req.ifr_flags |= IFF_UP;
    REQUIRE(::ioctl(sock, SIOCSIFFLAGS, &req) == 0);
    ::close(sock);
    LIBBPF_OPTS(bpf_tc_hook, clsact, .ifindex = ifindex_, .attach_point = BPF_TC_INGRESS);
    REQUIRE_MESSAGE(bpf_tc_hook_create(&clsact) == 0, "no clsact qdisc on the tun device");
    if (before >= 0)
      attach(before, BPF_TC_INGRESS, 1);
    attach(h.program().ingress_fd(), BPF_TC_INGRESS, 2);
    attach(h.program().egress_fd(), BPF_TC_EGRESS, 2);
  }
  ~TunDevice() { ::close(fd_); } // the device and its filters go with it
  TunDevice(const TunDevice &) = delete;
  TunDevice &operator=(const TunDevice &) = delete;

  uint32_t ifindex() const { return uint32_t(ifindex_); }

  // Into the device: TC ingress.
  void receive(const Bytes &data) {
    REQUIRE_MESSAGE(::write(fd_, data.data(), data.size()) == ssize_t(data.size()),
                    "write to the tun device: ", strerror(errno));
  }

  // Out of the device through a packet socket: TC egress. Without a link
  // layer the packet starts at its network header (`protocol`).
  void send(const Bytes &data, uint16_t protocol) {
    int sock = ::socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(protocol));
    REQUIRE_MESSAGE(sock >= 0, "packet socket: ", strerror(errno));
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = ifindex_;
    to.sll_protocol = htons(protocol);
    ssize_t sent =
        ::sendto(sock, data.data(), data.size(), 0, reinterpret_cast<sockaddr *>(&to), sizeof(to));
    ::close(sock);
    REQUIRE_MESSAGE(sent == ssize_t(data.size()), "send on the tun device: ", strerror(errno));
  }

private:
  void attach(int prog_fd, bpf_tc_attach_point point, uint32_t priority) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex_, .attach_point = point);
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd, .priority = priority);
    REQUIRE_MESSAGE(bpf_tc_attach(&hook, &opts) == 0, "attaching to the tun device");
  }

  int fd_ = -1;
  int ifindex_ = 0;
};

// A frame into (ingress) or out of (egress) the device.
struct DeviceFrame {
  Bytes data;
  bool out = false;
  uint16_t protocol = 0; // of a frame sent out
};

struct DeviceRow {
  std::string name;
  std::vector<DeviceFrame> frames;
  std::vector<ExpectedFlow> flows; // keys without ifindex: the device's is set
  CounterValues counters;
};

// The frames have passed the program once its frame counter says so (the
// kernel runs TC in the writer's context on most configurations; not on all).
void wait_frames(Harness &h, uint64_t frames) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (h.counters()[TCF_CTR_FRAMES] < frames && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(h.counters()[TCF_CTR_FRAMES] == frames);
}

void check_device_row(const DeviceRow &row, TunDevice &dev, Harness &h) {
  INFO("row: ", row.name);
  h.reset();
  for (const auto &f : row.frames)
    f.out ? dev.send(f.data, f.protocol) : dev.receive(f.data);
  wait_frames(h, row.frames.size());
  std::vector<ExpectedFlow> flows = row.flows;
  for (auto &e : flows)
    e.key.ifindex = dev.ifindex();
  check_state(h, flows, row.counters);
}

// The packet from its network header on: a builder's frame without Ethernet.
Bytes l3(const Bytes &frame) { return Bytes(frame.begin() + eth_len, frame.end()); }

// The 4-byte packet information a tun device without IFF_NO_PI reads first.
Bytes with_pi(uint16_t protocol, const Bytes &packet) {
  Bytes out = {0, 0, uint8_t(protocol >> 8), uint8_t(protocol)};
  out.insert(out.end(), packet.begin(), packet.end());
  return out;
}

// struct virtio_net_hdr (linux/virtio_net.h does not compile as C++): what
// tun and tap read before a packet with IFF_VNET_HDR, in host byte order.
struct VirtioNetHdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
};
static_assert(sizeof(VirtioNetHdr) == 10);
constexpr uint8_t virtio_needs_csum = 1, virtio_gso_tcpv4 = 1;

// A virtio-net header for a TCP/IPv4 GSO packet whose headers end at `hdr_len`.
Bytes with_tso(const Bytes &packet, uint16_t hdr_len, uint16_t csum_start, uint16_t gso_size) {
  VirtioNetHdr vh{};
  vh.flags = virtio_needs_csum;
  vh.gso_type = virtio_gso_tcpv4;
  vh.hdr_len = hdr_len;
  vh.gso_size = gso_size;
  vh.csum_start = csum_start;
  vh.csum_offset = 16; // the TCP checksum
  Bytes out(reinterpret_cast<const uint8_t *>(&vh), reinterpret_cast<const uint8_t *>(&vh + 1));
  out.insert(out.end(), packet.begin(), packet.end());
  return out;
}

const CounterValues one_gso = {{TCF_CTR_GSO_FRAMES, 1}};

std::vector<DeviceRow> tun_rows() {
  Bytes syn = l3(v4().tcp(1234, 80, tf::syn).payload(100).build());
  Bytes dns6 = l3(v6().ipv6_ext(IPPROTO_HOPOPTS).udp(5353, 53).payload(30).build());
  // Bytes 12 and 13 of these are what an Ethernet frame of theirs would have there.
  Bytes from8 = l3(PacketBuilder().eth().ipv4("8.0.1.2", b4).udp(1000, 2000).payload(10).build());
  Bytes later = l3(v4({.id = 5, .frag_offset = 185}).ip_proto(IPPROTO_UDP).payload(100).build());
  Bytes cut = Bytes(syn.begin(), syn.begin() + 12);
  auto frag = ip4_key(IPPROTO_UDP, a4, 0, b4, 0, TCF_KIND_FRAG);
  return {
      {"IPv4 TCP in", {{syn}}, {fwd(tcp4(1234, 80), 20 + 20 + 100)}},
      {"IPv6 UDP with hop-by-hop in", {{dns6}}, {fwd(udp6(5353, 53), 40 + 8 + 8 + 30)}},
      {"IPv4 TCP out", {{syn, true, ETH_P_IP}}, {fwd(tcp4(1234, 80), 140)}},
      {"IPv6 UDP out", {{dns6, true, ETH_P_IPV6}}, {fwd(udp6(5353, 53), 86)}},
      {"IPv4 from 8.0.1.2: bytes 12-13 read 0x0800",
       {{from8}},
       {fwd(ip4_key(IPPROTO_UDP, "8.0.1.2", 1000, b4, 2000), 20 + 8 + 10)}},
      {"a later fragment", {{later}}, {fwd(frag, 120)}, {{TCF_CTR_FRAG_UNMATCHED, 1}}},
      {"IPv4 cut inside its header",
       {{cut}},
       {},
       {{TCF_CTR_MALFORMED, 1}, {TCF_CTR_MAL_IPV4, 1}, {TCF_CTR_MALFORMED_BYTES, 12}}},
  };
}

TEST_CASE("tun: packets without a link-layer header, both hooks") {
  PrivateNetns netns;
  Harness &h = shared_harness();
  TunDevice tun("tcft0", IFF_TUN | IFF_NO_PI, h);
  for (const auto &row : tun_rows())
    check_device_row(row, tun, h);
}

TEST_CASE("tun with packet information: a non-IP protocol is a link-layer flow") {
  PrivateNetns netns;
  Harness &h = shared_harness();
  TunDevice tun("tcft1", IFF_TUN, h);
  Bytes mpls = {0x00, 0x01, 0x01, 0x40, 0x45, 0, 0, 20, 0,  0, 0, 0,
                64,   17,   0,    0,    10,   0, 0, 1,  10, 0, 0, 2}; // a label, then IPv4 bits
  tcf_flow_key key{};
  key.kind = TCF_KIND_LINK;
  key.ethertype = 0x8847;
  check_device_row({"MPLS", {{with_pi(0x8847, mpls)}}, {fwd(key, mpls.size())}}, tun, h);
  Bytes syn = l3(v4().tcp(1234, 80, tf::syn).build());
  check_device_row({"IPv4", {{with_pi(ETH_P_IP, syn)}}, {fwd(tcp4(1234, 80), 40)}}, tun, h);
}

TEST_CASE("tun and tap with virtio-net headers: GSO with gso_segs 0") {
  PrivateNetns netns;
  Harness &h = shared_harness();
  constexpr uint16_t hdr = 20 + 20;
  Bytes tso = l3(v4().tcp(1234, 80, tf::ack).payload(3000).build());
  TunDevice tun("tcft2", IFF_TUN | IFF_NO_PI | IFF_VNET_HDR, h);
  check_device_row({"tun: 3000 bytes in segments of 1000",
                    {{with_tso(tso, hdr, 20, 1000)}},
                    {{tcp4(1234, 80), {3, 0}, {hdr + 3000 + 2 * hdr, 0}}},
                    one_gso},
                   tun, h);
  check_device_row({"tun: 3000 bytes in segments of 1400",
                    {{with_tso(tso, hdr, 20, 1400)}},
                    {{tcp4(1234, 80), {3, 0}, {hdr + 3000 + 2 * hdr, 0}}},
                    one_gso},
                   tun, h);
  Bytes frame = v4().tcp(1234, 80, tf::ack).payload(2500).build();
  TunDevice tap("tcft3", IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, h);
  check_device_row({"tap: 2500 bytes in segments of 1000",
                    {{with_tso(frame, eth_len + hdr, eth_len + 20, 1000)}},
                    {{tcp4(1234, 80), {3, 0}, {hdr + 2500 + 2 * hdr, 0}}},
                    one_gso},
                   tap, h);
}

TEST_CASE("tap: Ethernet, also when the first byte looks like an IP header") {
  PrivateNetns netns;
  Harness &h = shared_harness();
  TunDevice tap("tcft4", IFF_TAP | IFF_NO_PI, h);
  constexpr Mac ip_like = {0x45, 0x00, 0x00, 0x28, 0x00, 0x01}; // 0x45: IPv4, IHL 5
  Bytes frame = PacketBuilder().eth(mac_a, ip_like).ipv4(a4, b4).tcp(1234, 80, tf::syn).build();
  Bytes arp = PacketBuilder().eth(mac_a, broadcast).arp(a4, b4).build();
  check_device_row({"IPv4 to a MAC starting 45 00", {{frame}}, {fwd(tcp4(1234, 80), 40)}}, tap, h);
  check_device_row(
      {"ARP: MACs kept", {{arp}}, {fwd(link_key(mac_a, broadcast, ETH_P_ARP), arp.size())}}, tap,
      h);
}

// tests/bpf/shift_headers.bpf.c, loaded.
class ShiftPrograms {
public:
  ShiftPrograms() : obj_(bpf_object__open_file(TCF_SHIFT_BPF, nullptr)) {
    REQUIRE_MESSAGE(obj_ != nullptr, "cannot open ", TCF_SHIFT_BPF);
    REQUIRE_MESSAGE(bpf_object__load(obj_) == 0, "cannot load ", TCF_SHIFT_BPF);
  }
  ~ShiftPrograms() { bpf_object__close(obj_); }
  ShiftPrograms(const ShiftPrograms &) = delete;
  ShiftPrograms &operator=(const ShiftPrograms &) = delete;

  int fd(const char *name) const {
    return bpf_program__fd(bpf_object__find_program_by_name(obj_, name));
  }

private:
  bpf_object *obj_;
};

// What a tunnel device's ingress may leave in front of the packet it
// carried: the program finds the network header past it, and counts the
// packet, not what is in front.
TEST_CASE("tun with bytes in front of the network header (IP tunnel ingress)") {
  PrivateNetns netns;
  Harness &h = shared_harness();
  ShiftPrograms shift;
  Bytes syn = l3(v4().tcp(1234, 80, tf::syn).payload(100).build());
  Bytes dns6 = l3(v6().udp(5353, 53).payload(30).build());
  Bytes mpls = {0x00, 0x01, 0x01, 0x40, 0, 0, 0, 0};
  tcf_flow_key link{};
  link.kind = TCF_KIND_LINK;
  link.ethertype = 0x8847;
  const char *names[] = {"tcft5", "tcft6", "tcft7"};
  const char *progs[] = {"push_ipip", "push_gre", "push_zeros"};
  for (int i = 0; i < 3; i++) {
    INFO("in front: ", std::string(progs[i]));
    TunDevice tun(names[i], IFF_TUN, h, shift.fd(progs[i]));
    check_device_row({"IPv4", {{with_pi(ETH_P_IP, syn)}}, {fwd(tcp4(1234, 80), 140)}}, tun, h);
    check_device_row({"IPv6", {{with_pi(ETH_P_IPV6, dns6)}}, {fwd(udp6(5353, 53), 78)}}, tun, h);
    check_device_row({"MPLS", {{with_pi(0x8847, mpls)}}, {fwd(link, mpls.size())}}, tun, h);
  }
}

} // namespace
