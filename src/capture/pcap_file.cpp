#include "capture/pcap_file.h"

#include "util/error.h"

#include <fmt/format.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <pcap/pcap.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

namespace tcflows {
namespace {

// A link header turned into Ethernet: where the network header starts, its
// EtherType (or, for 802.2 LLC, 0 for an 802.3 length), the sender's MAC
// if the header has one, and whether the capturing host sent it.
struct Link {
  size_t header = 0;
  uint16_t ethertype = 0;
  const uint8_t *src_mac = nullptr;
  bool outgoing = false;
  bool made_up = true; // an Ethernet header is put in front
};

uint16_t be16(const uint8_t *p) { return uint16_t(p[0] << 8 | p[1]); }

// The Linux cooked protocol field: an EtherType, or one of the values below
// 0x0600 that name a frame without one. Only 802.2 LLC (ETH_P_802_2) has an
// Ethernet spelling: an 802.3 length.
std::optional<uint16_t> cooked_ethertype(uint16_t protocol) {
  if (protocol >= ETH_P_802_3_MIN)
    return protocol;
  if (protocol == ETH_P_802_2)
    return uint16_t{0};
  return std::nullopt;
}

// SLL: packet type, ARPHRD type, address length, 8 address bytes, protocol.
std::optional<Link> sll(const uint8_t *p, size_t len) {
  constexpr size_t header = 16;
  auto type = len >= header ? cooked_ethertype(be16(p + 14)) : std::nullopt;
  if (!type)
    return std::nullopt;
  return Link{header, *type, be16(p + 4) == ETH_ALEN ? p + 6 : nullptr, be16(p) == PACKET_OUTGOING};
}

// SLL2: protocol, reserved, ifindex, ARPHRD type, packet type, address
// length, 8 address bytes.
std::optional<Link> sll2(const uint8_t *p, size_t len) {
  constexpr size_t header = 20;
  auto type = len >= header ? cooked_ethertype(be16(p)) : std::nullopt;
  if (!type)
    return std::nullopt;
  return Link{header, *type, p[11] == ETH_ALEN ? p + 12 : nullptr, p[10] == PACKET_OUTGOING};
}

// Raw IP: the version nibble says which.
std::optional<Link> raw_ip(const uint8_t *p, size_t len) {
  if (len < 1 || (p[0] >> 4 != 4 && p[0] >> 4 != 6))
    return std::nullopt;
  return Link{0, uint16_t(p[0] >> 4 == 4 ? ETH_P_IP : ETH_P_IPV6)};
}

std::optional<Link> link_of(int link_type, const uint8_t *p, size_t len) {
  switch (link_type) {
  case DLT_EN10MB:
    if (len < ETH_HLEN)
      return std::nullopt;
    return Link{.made_up = false};
  case DLT_LINUX_SLL:
    return sll(p, len);
  case DLT_LINUX_SLL2:
    return sll2(p, len);
  default: // DLT_RAW, DLT_IPV4, DLT_IPV6
    return raw_ip(p, len);
  }
}

bool supported(int link_type) {
  for (int type : {DLT_EN10MB, DLT_LINUX_SLL, DLT_LINUX_SLL2, DLT_RAW, DLT_IPV4, DLT_IPV6})
    if (link_type == type)
      return true;
  return false;
}

// The Ethernet header put in front of a frame of another link type: no
// destination, the sender's MAC when known, the EtherType (for 802.2 LLC
// the 802.3 length of the `wire` bytes that follow).
void put_made_up_header(uint8_t *header, const Link &link, size_t wire) {
  std::memset(header, 0, ETH_HLEN);
  if (link.src_mac)
    std::memcpy(header + ETH_ALEN, link.src_mac, ETH_ALEN);
  uint16_t type = link.ethertype ? link.ethertype : uint16_t(std::min<size_t>(wire, ETH_DATA_LEN));
  header[12] = uint8_t(type >> 8);
  header[13] = uint8_t(type);
}

// `frame` (its buffer reused) made the frame as Ethernet, at most
// max_run_frame bytes and its whole length; a frame the capture's snap
// length cut is filled with zeros up to its length on the wire (or to
// max_run_frame), so that its headers read as they were and the IP header's
// length holds: it counts as it was.
void ethernet(const pcap_pkthdr &hdr, const uint8_t *p, const Link &link, CaptureStats &stats,
              CapturedFrame &frame) {
  frame.ts_ns = uint64_t(hdr.ts.tv_sec) * 1'000'000'000 + uint64_t(hdr.ts.tv_usec); // ns precision
  frame.outgoing = link.outgoing;
  size_t body = hdr.caplen - link.header;
  size_t wire = std::max<size_t>(body, hdr.len > link.header ? hdr.len - link.header : 0);
  size_t head = link.made_up ? ETH_HLEN : 0;
  size_t room = max_run_frame - head;
  size_t copied = std::min(body, room);
  auto &d = frame.data;
  d.resize(head + std::max(copied, std::min(wire, room))); // capacity kept: no allocation
  if (link.made_up)
    put_made_up_header(d.data(), link, wire);
  std::memcpy(d.data() + head, p + link.header, copied);
  if (wire > body && body < room) {
    stats.padded_frames++;
    std::memset(d.data() + head + copied, 0, d.size() - head - copied);
  }
  frame.length = uint32_t(head + wire);
  if (wire > room)
    stats.cut_frames++;
}

} // namespace

void PcapFile::Close::operator()(pcap *p) const { pcap_close(p); }

PcapFile::PcapFile(std::string path, std::unique_ptr<char[]> buffer, pcap *p, int link_type)
    : path_(std::move(path)), buffer_(std::move(buffer)), pcap_(p), link_type_(link_type) {}

std::variant<PcapFile, std::string> PcapFile::open(const std::string &path) {
  // Opened here for a larger buffer than stdio's page: libpcap reads a frame
  // with two freads, a read(2) a page without it.
  std::FILE *file = path == "-" ? stdin : std::fopen(path.c_str(), "rb");
  if (!file)
    return fmt::format("{}: {}", path, errno_text(errno));
  std::unique_ptr<char[]> buffer;
  if (file != stdin) { // stdin outlives this file: it keeps its own buffer
    buffer = std::make_unique<char[]>(read_buffer);
    std::setvbuf(file, buffer.get(), _IOFBF, read_buffer);
  }
  char err[PCAP_ERRBUF_SIZE] = "";
  pcap *p = pcap_fopen_offline_with_tstamp_precision(file, PCAP_TSTAMP_PRECISION_NANO, err);
  if (!p) { // libpcap names the file in some of its messages
    if (file != stdin)
      std::fclose(file);
    return std::string_view(err).starts_with(path) ? err : fmt::format("{}: {}", path, err);
  }
  int link_type = pcap_datalink(p);
  if (!supported(link_type)) {
    const char *name = pcap_datalink_val_to_name(link_type);
    pcap_close(p);
    return fmt::format("{}: link type {} ({}) is not supported: Ethernet, Linux cooked (SLL, "
                       "SLL2) and raw IP are",
                       path, name ? name : "unknown", link_type);
  }
  return PcapFile(path, std::move(buffer), p, link_type);
}

const CapturedFrame *PcapFile::next(CaptureStats &stats) {
  pcap_pkthdr *hdr;
  const u_char *data;
  while (true) {
    int rc = pcap_next_ex(pcap_.get(), &hdr, &data);
    if (rc == PCAP_ERROR_BREAK)
      return nullptr;
    if (rc != 1) {
      stats.read_errors++;
      return nullptr;
    }
    stats.frames++;
    auto link = link_of(link_type_, data, hdr->caplen);
    if (link) {
      ethernet(*hdr, data, *link, stats, frame_);
      return &frame_;
    }
    stats.bad_frames++;
  }
}

} // namespace tcflows
