#include "packet_builder.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace tcflows::test {

namespace {

constexpr size_t eth_hlen = 14;
constexpr size_t ipv6_hlen = 40;

uint16_t ipv4_checksum(const uint8_t *hdr, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2)
    sum += uint32_t(hdr[i]) << 8 | hdr[i + 1];
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum);
}

} // namespace

uint32_t ipv4_addr(std::string_view text) {
  uint32_t addr;
  if (inet_pton(AF_INET, std::string(text).c_str(), &addr) != 1)
    throw std::invalid_argument("bad IPv4 address in a test: " + std::string(text));
  return addr;
}

std::array<uint8_t, 16> ipv6_addr(std::string_view text) {
  std::array<uint8_t, 16> addr;
  if (inet_pton(AF_INET6, std::string(text).c_str(), addr.data()) != 1)
    throw std::invalid_argument("bad IPv6 address in a test: " + std::string(text));
  return addr;
}

Bytes patch(Bytes frame, size_t at, std::initializer_list<uint8_t> bytes) {
  if (at + bytes.size() > frame.size())
    throw std::out_of_range("patch beyond the end of a test frame");
  std::copy(bytes.begin(), bytes.end(), frame.begin() + at);
  return frame;
}

size_t PacketBuilder::append(size_t n) {
  size_t at = buf_.size();
  buf_.resize(at + n, 0);
  return at;
}

void PacketBuilder::put16(size_t at, uint16_t v) {
  buf_[at] = uint8_t(v >> 8);
  buf_[at + 1] = uint8_t(v);
}

void PacketBuilder::put32(size_t at, uint32_t v) {
  put16(at, uint16_t(v >> 16));
  put16(at + 2, uint16_t(v));
}

void PacketBuilder::set_next_ethertype(uint16_t type) {
  if (ethertype_at_)
    put16(*ethertype_at_, type);
  ethertype_at_.reset();
}

void PacketBuilder::set_next_ip_proto(uint8_t proto) {
  if (ip_proto_at_)
    buf_[*ip_proto_at_] = proto;
  ip_proto_at_.reset();
}

PacketBuilder &PacketBuilder::eth(Mac src, Mac dst, uint16_t type) {
  size_t at = append(eth_hlen);
  std::copy(dst.begin(), dst.end(), buf_.begin() + at);
  std::copy(src.begin(), src.end(), buf_.begin() + at + 6);
  put16(at + 12, type);
  ethertype_at_ = at + 12;
  return *this;
}

PacketBuilder &PacketBuilder::vlan(uint16_t id, uint16_t tpid) {
  set_next_ethertype(tpid);
  size_t at = append(4);
  put16(at, id & 0x0fff);
  ethertype_at_ = at + 2;
  return *this;
}

PacketBuilder &PacketBuilder::ipv4(std::string_view src, std::string_view dst, Ipv4Opts opts) {
  set_next_ethertype(0x0800);
  size_t at = append(std::max<size_t>(opts.ihl, 5) * 4);
  buf_[at] = uint8_t(opts.version << 4 | (opts.ihl & 0x0f));
  put16(at + 4, opts.id);
  put16(at + 6, uint16_t((opts.more_fragments ? 0x2000 : 0) | (opts.frag_offset & 0x1fff)));
  buf_[at + 8] = 64;
  uint32_t s = ipv4_addr(src), d = ipv4_addr(dst);
  std::memcpy(&buf_[at + 12], &s, 4);
  std::memcpy(&buf_[at + 16], &d, 4);
  std::fill(buf_.begin() + at + 20, buf_.end(), 0x01); // NOP options
  lengths_.push_back({at + 2, at, 0, opts.total_length});
  ip_proto_at_ = at + 9;
  ipv4_at_ = at;
  return *this;
}

PacketBuilder &PacketBuilder::ipv6(std::string_view src, std::string_view dst, Ipv6Opts opts) {
  set_next_ethertype(0x86dd);
  size_t at = append(ipv6_hlen);
  buf_[at] = uint8_t(opts.version << 4);
  buf_[at + 7] = 64;
  auto s = ipv6_addr(src), d = ipv6_addr(dst);
  std::copy(s.begin(), s.end(), buf_.begin() + at + 8);
  std::copy(d.begin(), d.end(), buf_.begin() + at + 24);
  lengths_.push_back({at + 4, at + ipv6_hlen, 0, opts.payload_length});
  ip_proto_at_ = at + 6;
  if (opts.next_header) {
    buf_[at + 6] = *opts.next_header;
    ip_proto_at_.reset();
  }
  return *this;
}

PacketBuilder &PacketBuilder::ipv6_ext(uint8_t type, uint8_t len8) {
  set_next_ip_proto(type);
  size_t at = append((len8 + 1) * 8);
  buf_[at + 1] = len8;
  if (type != 43) // options: PadN over the rest
    buf_[at + 2] = 1, buf_[at + 3] = uint8_t((len8 + 1) * 8 - 4);
  ip_proto_at_ = at;
  return *this;
}

PacketBuilder &PacketBuilder::ipv6_ah() {
  set_next_ip_proto(51);
  size_t at = append(24);
  buf_[at + 1] = 24 / 4 - 2; // payload length in 32-bit words, minus 2
  put32(at + 4, 0x100);      // SPI
  put32(at + 8, 1);          // sequence number
  ip_proto_at_ = at;
  return *this;
}

PacketBuilder &PacketBuilder::ipv6_frag(uint16_t offset, bool more, uint32_t id) {
  set_next_ip_proto(44);
  size_t at = append(8);
  put16(at + 2, uint16_t(offset << 3 | (more ? 1 : 0)));
  put32(at + 4, id);
  ip_proto_at_ = at;
  return *this;
}

size_t PacketBuilder::ports_header(uint8_t proto, size_t len, uint16_t sport, uint16_t dport) {
  set_next_ip_proto(proto);
  size_t at = append(len);
  put16(at, sport);
  put16(at + 2, dport);
  return at;
}

PacketBuilder &PacketBuilder::tcp(uint16_t sport, uint16_t dport, uint8_t flags, TcpOpts opts) {
  size_t at = ports_header(6, std::max<size_t>(opts.doff, 5) * 4, sport, dport);
  put32(at + 4, opts.seq);
  put32(at + 8, (flags & tcp_flags::ack) ? 1 : 0);
  buf_[at + 12] = uint8_t(opts.doff << 4);
  buf_[at + 13] = flags;
  put16(at + 14, 65535);                               // window
  std::fill(buf_.begin() + at + 20, buf_.end(), 0x01); // NOP options
  return *this;
}

PacketBuilder &PacketBuilder::udp(uint16_t sport, uint16_t dport, std::optional<uint16_t> length) {
  size_t at = ports_header(17, 8, sport, dport);
  lengths_.push_back({at + 4, at, 0, length});
  return *this;
}

PacketBuilder &PacketBuilder::udplite(uint16_t sport, uint16_t dport) {
  size_t at = ports_header(136, 8, sport, dport);
  put16(at + 4, 8); // checksum coverage: the header only
  return *this;
}

PacketBuilder &PacketBuilder::sctp(uint16_t sport, uint16_t dport) {
  size_t at = ports_header(132, 12, sport, dport);
  put32(at + 4, 0x01020304); // verification tag
  return *this;
}

PacketBuilder &PacketBuilder::dccp(uint16_t sport, uint16_t dport, uint8_t doff) {
  size_t at = ports_header(33, 16, sport, dport);
  buf_[at + 4] = doff;
  buf_[at + 8] = 0x01; // type 0 (request), X = 1: 48-bit sequence numbers
  return *this;
}

PacketBuilder &PacketBuilder::icmp_any(uint8_t proto, uint8_t type, uint8_t code, uint16_t id,
                                       uint16_t seq) {
  set_next_ip_proto(proto);
  size_t at = append(8);
  buf_[at] = type;
  buf_[at + 1] = code;
  put16(at + 4, id);
  put16(at + 6, seq);
  return *this;
}

PacketBuilder &PacketBuilder::icmp(uint8_t type, uint8_t code, uint16_t id, uint16_t seq) {
  return icmp_any(1, type, code, id, seq);
}

PacketBuilder &PacketBuilder::icmpv6(uint8_t type, uint8_t code, uint16_t id, uint16_t seq) {
  return icmp_any(58, type, code, id, seq);
}

PacketBuilder &PacketBuilder::gre(uint16_t proto) {
  set_next_ip_proto(47);
  size_t at = append(4);
  put16(at + 2, proto);
  return *this;
}

PacketBuilder &PacketBuilder::vxlan(uint32_t vni) {
  size_t at = append(8);
  buf_[at] = 0x08; // I: the VNI is valid
  put32(at + 4, vni << 8);
  return *this;
}

PacketBuilder &PacketBuilder::geneve(uint32_t vni, uint8_t opt_words, uint16_t proto) {
  size_t at = append(8 + opt_words * 4u);
  buf_[at] = opt_words & 0x3f; // version 0
  put16(at + 2, proto);
  put32(at + 4, vni << 8);
  return *this;
}

PacketBuilder &PacketBuilder::ip_proto(uint8_t proto) {
  set_next_ip_proto(proto);
  return *this;
}

PacketBuilder &PacketBuilder::arp(std::string_view sender_ip, std::string_view target_ip) {
  set_next_ethertype(0x0806);
  size_t at = append(28);
  put16(at, 1);          // Ethernet
  put16(at + 2, 0x0800); // IPv4
  buf_[at + 4] = 6;
  buf_[at + 5] = 4;
  put16(at + 6, 1); // request
  std::copy(mac_a.begin(), mac_a.end(), buf_.begin() + at + 8);
  uint32_t s = ipv4_addr(sender_ip), t = ipv4_addr(target_ip);
  std::memcpy(&buf_[at + 14], &s, 4);
  std::memcpy(&buf_[at + 24], &t, 4);
  return *this;
}

PacketBuilder &PacketBuilder::lldp() {
  set_next_ethertype(0x88cc);
  auto tlv = [this](uint8_t type, const Bytes &value) {
    size_t at = append(2 + value.size());
    put16(at, uint16_t(type << 9 | value.size()));
    std::copy(value.begin(), value.end(), buf_.begin() + at + 2);
  };
  Bytes mac_id = {4, mac_a[0], mac_a[1], mac_a[2], mac_a[3], mac_a[4], mac_a[5]};
  tlv(1, mac_id);                  // chassis id: MAC address
  tlv(2, {7, 'e', 't', 'h', '0'}); // port id: locally assigned
  tlv(3, {0, 120});                // TTL
  tlv(0, {});                      // end
  return *this;
}

PacketBuilder &PacketBuilder::llc(uint8_t dsap, uint8_t ssap, uint8_t ctrl) {
  if (ethertype_at_)
    lengths_.push_back({*ethertype_at_, *ethertype_at_ + 2, 0, {}});
  ethertype_at_.reset();
  size_t at = append(3);
  buf_[at] = dsap;
  buf_[at + 1] = ssap;
  buf_[at + 2] = ctrl;
  return *this;
}

PacketBuilder &PacketBuilder::snap(std::array<uint8_t, 3> oui, uint16_t pid) {
  llc(0xaa, 0xaa);
  size_t at = append(5);
  std::copy(oui.begin(), oui.end(), buf_.begin() + at);
  put16(at + 3, pid);
  return *this;
}

PacketBuilder &PacketBuilder::payload(size_t n, uint8_t fill) {
  size_t at = append(n);
  std::fill(buf_.begin() + at, buf_.end(), fill);
  return *this;
}

PacketBuilder &PacketBuilder::bytes(const Bytes &raw) {
  buf_.insert(buf_.end(), raw.begin(), raw.end());
  return *this;
}

PacketBuilder &PacketBuilder::pad_to(size_t frame_len) {
  pad_to_ = frame_len;
  return *this;
}

PacketBuilder &PacketBuilder::truncate(size_t frame_len) {
  truncate_to_ = frame_len;
  return *this;
}

Bytes PacketBuilder::build() const {
  PacketBuilder out = *this;
  for (const LengthField &f : lengths_)
    out.put16(f.at, f.fixed ? *f.fixed : uint16_t(int64_t(buf_.size() - f.from) + f.base));
  if (ipv4_at_) {
    size_t at = *ipv4_at_;
    size_t hlen = std::min<size_t>(std::max(buf_[at] & 0x0f, 5) * 4, buf_.size() - at);
    out.put16(at + 10, ipv4_checksum(&out.buf_[at], hlen));
  }
  if (out.buf_.size() < pad_to_)
    out.buf_.resize(pad_to_, 0);
  if (truncate_to_ && *truncate_to_ < out.buf_.size())
    out.buf_.resize(*truncate_to_);
  return out.buf_;
}

} // namespace tcflows::test
