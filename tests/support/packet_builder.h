// A small builder of Ethernet frames for the parser tests, katran style:
//
//   Bytes frame = PacketBuilder().eth().vlan(10).ipv4("10.0.0.1", "10.0.0.2")
//                     .tcp(1234, 80, TcpFlags::syn).payload(100).build();
//
// Each layer fills in the previous layer's "next protocol" field (EtherType,
// IPv4 protocol, IPv6 next header), and build() sets every length field
// (IPv4 total length, IPv6 payload length, UDP length, 802.3 length) from
// what follows it, unless an option overrides it so that a row can break it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string_view>
#include <vector>

namespace tcflows::test {

using Bytes = std::vector<uint8_t>;
using Mac = std::array<uint8_t, 6>;

inline constexpr Mac mac_a = {0x02, 0x00, 0x00, 0x00, 0x00, 0x0a};
inline constexpr Mac mac_b = {0x02, 0x00, 0x00, 0x00, 0x00, 0x0b};

// TCP flag bits (byte 13 of the header).
namespace tcp_flags {
inline constexpr uint8_t fin = 0x01, syn = 0x02, rst = 0x04, psh = 0x08, ack = 0x10;
}

struct Ipv4Opts {
  uint8_t ihl = 5;          // header length in 32-bit words; options are NOPs
  uint8_t version = 4;      // a row may lie
  uint16_t id = 1;          // identification
  uint16_t frag_offset = 0; // in 8-byte units
  bool more_fragments = false;
  std::optional<uint16_t> total_length; // default: up to the end of the frame
};

struct Ipv6Opts {
  uint8_t version = 6;
  std::optional<uint16_t> payload_length; // default: up to the end of the frame
  std::optional<uint8_t> next_header;     // default: the next layer's
};

struct TcpOpts {
  uint8_t doff = 5; // header length in 32-bit words; options are NOPs
  uint32_t seq = 1;
};

class PacketBuilder {
public:
  // Ethernet II; the EtherType comes from the next layer, or `type` when none.
  PacketBuilder &eth(Mac src = mac_a, Mac dst = mac_b, uint16_t type = 0);
  // An 802.1Q (or 802.1ad with tpid 0x88a8) tag.
  PacketBuilder &vlan(uint16_t id, uint16_t tpid = 0x8100);

  PacketBuilder &ipv4(std::string_view src, std::string_view dst, Ipv4Opts opts = {});
  PacketBuilder &ipv6(std::string_view src, std::string_view dst, Ipv6Opts opts = {});
  // Hop-by-hop (0), routing (43) or destination options (60): 8 * (len8 + 1) bytes.
  PacketBuilder &ipv6_ext(uint8_t type, uint8_t len8 = 0);
  // Authentication header (51) with a 12-byte ICV: 24 bytes.
  PacketBuilder &ipv6_ah();
  // Fragment header (44); offset in 8-byte units.
  PacketBuilder &ipv6_frag(uint16_t offset, bool more, uint32_t id);

  PacketBuilder &tcp(uint16_t sport, uint16_t dport, uint8_t flags, TcpOpts opts = {});
  // UDP; `length` overrides the computed length field.
  PacketBuilder &udp(uint16_t sport, uint16_t dport, std::optional<uint16_t> length = {});
  PacketBuilder &udplite(uint16_t sport, uint16_t dport);
  PacketBuilder &sctp(uint16_t sport, uint16_t dport);
  // DCCP with the extended sequence number: 16 bytes, data offset `doff` words.
  PacketBuilder &dccp(uint16_t sport, uint16_t dport, uint8_t doff = 4);
  PacketBuilder &icmp(uint8_t type, uint8_t code, uint16_t id = 0, uint16_t seq = 0);
  PacketBuilder &icmpv6(uint8_t type, uint8_t code, uint16_t id = 0, uint16_t seq = 0);
  PacketBuilder &gre(uint16_t proto = 0x0800);
  // A VXLAN header (8 bytes) after udp(): Ethernet follows (eth()).
  PacketBuilder &vxlan(uint32_t vni);
  // A Geneve header with `opt_words` 4-byte words of options and a protocol
  // type (0x6558: Ethernet follows).
  PacketBuilder &geneve(uint32_t vni, uint8_t opt_words = 0, uint16_t proto = 0x6558);
  // Any other IP protocol number, no header of its own.
  PacketBuilder &ip_proto(uint8_t proto);

  // ARP request for IPv4 over Ethernet.
  PacketBuilder &arp(std::string_view sender_ip, std::string_view target_ip);
  // LLDP with chassis id, port id, TTL and end TLVs.
  PacketBuilder &lldp();
  // 802.3 length field + 802.2 LLC header (STP: 0x42 0x42 0x03).
  PacketBuilder &llc(uint8_t dsap, uint8_t ssap, uint8_t ctrl = 0x03);
  // LLC SNAP (AA AA 03) with an OUI and protocol id (CDP: 00:00:0c, 0x2000).
  PacketBuilder &snap(std::array<uint8_t, 3> oui, uint16_t pid);

  PacketBuilder &payload(size_t n, uint8_t fill = 0x5a);
  PacketBuilder &bytes(const Bytes &raw);
  // Ethernet padding up to `frame_len` bytes, after the length fields are set.
  PacketBuilder &pad_to(size_t frame_len);
  // Cuts the finished frame to `frame_len` bytes (a snap length).
  PacketBuilder &truncate(size_t frame_len);

  size_t size() const { return buf_.size(); }
  Bytes build() const;

private:
  struct LengthField {
    size_t at;    // offset of the 16-bit field
    size_t from;  // the length counts bytes from here to the end
    int64_t base; // added to it
    std::optional<uint16_t> fixed;
  };

  size_t append(size_t n);
  void put16(size_t at, uint16_t v);
  void put32(size_t at, uint32_t v);
  // A transport header of `len` bytes that starts with the two ports.
  size_t ports_header(uint8_t proto, size_t len, uint16_t sport, uint16_t dport);
  // Fills the previous layer's next-protocol field.
  void set_next_ethertype(uint16_t type);
  void set_next_ip_proto(uint8_t proto);
  PacketBuilder &icmp_any(uint8_t proto, uint8_t type, uint8_t code, uint16_t id, uint16_t seq);

  Bytes buf_;
  std::vector<LengthField> lengths_;
  std::optional<size_t> ethertype_at_; // where the next EtherType goes
  std::optional<size_t> ip_proto_at_;  // where the next IP protocol goes
  std::optional<size_t> ipv4_at_;      // header checksum computed in build()
  size_t pad_to_ = 0;
  std::optional<size_t> truncate_to_;
};

// A copy of `frame` with `bytes` written at `at`: for fields the builder
// keeps consistent and a row wants broken.
Bytes patch(Bytes frame, size_t at, std::initializer_list<uint8_t> bytes);

// Network-order IPv4 address and IPv6 address bytes from text.
uint32_t ipv4_addr(std::string_view text);
std::array<uint8_t, 16> ipv6_addr(std::string_view text);

} // namespace tcflows::test
