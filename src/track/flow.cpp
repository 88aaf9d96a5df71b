#include "track/flow.h"

#include "util/hash.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <linux/if_ether.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstring>
#include <string_view>

namespace tcflows {
namespace {

struct Named {
  uint16_t number;
  std::string_view name;
};

constexpr std::array ip_protocols{
    Named{IPPROTO_TCP, "TCP"},         Named{IPPROTO_UDP, "UDP"},   Named{IPPROTO_ICMP, "ICMP"},
    Named{IPPROTO_ICMPV6, "ICMPv6"},   Named{IPPROTO_SCTP, "SCTP"}, Named{IPPROTO_DCCP, "DCCP"},
    Named{IPPROTO_UDPLITE, "UDPLite"},
};

constexpr std::array ethertypes{
    Named{ETH_P_ARP, "ARP"},          Named{ETH_P_RARP, "RARP"},     Named{0x88cc, "LLDP"},
    Named{ETH_P_PPP_DISC, "PPPoE-D"}, Named{ETH_P_PPP_SES, "PPPoE"}, Named{ETH_P_MPLS_UC, "MPLS"},
    Named{ETH_P_MPLS_MC, "MPLS"},     Named{ETH_P_PAE, "EAPOL"},     Named{0x88f7, "PTP"},
    Named{ETH_P_SLOW, "LACP"},        Named{0x9000, "LOOP"},         Named{ETH_P_8021Q, "VLAN"},
    Named{ETH_P_8021AD, "VLAN"},      Named{ETH_P_IP, "IPv4"},       Named{ETH_P_IPV6, "IPv6"},
};

// SNAP protocol ids (Cisco OUI) and LLC SAPs of 802.3 frames.
constexpr std::array snap_protocols{
    Named{0x2000, "CDP"},
    Named{0x010b, "PVST+"},
    Named{0x2003, "VTP"},
    Named{0x2004, "DTP"},
};
constexpr uint16_t llc_snap = 0xaaaa;
constexpr uint16_t llc_stp = 0x4242;

template <size_t N> std::string_view find_name(const std::array<Named, N> &table, uint16_t number) {
  for (const auto &entry : table)
    if (entry.number == number)
      return entry.name;
  return {};
}

std::string link_name(const tcf_flow_key &key) {
  if (key.ethertype != TCF_ETH_LLC && key.port[0] != llc_snap) {
    auto name = find_name(ethertypes, key.ethertype);
    return name.empty() ? fmt::format("0x{:04x}", key.ethertype) : std::string(name);
  }
  if (key.port[0] == llc_snap) {
    auto name = find_name(snap_protocols, key.ethertype);
    return name.empty() ? fmt::format("SNAP-0x{:04x}", key.ethertype) : std::string(name);
  }
  return key.port[0] == llc_stp ? "STP" : "LLC";
}

bool equal_nocase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

template <size_t N>
std::optional<std::string> find_nocase(const std::array<Named, N> &table, std::string_view text) {
  for (const auto &entry : table)
    if (equal_nocase(entry.name, text))
      return std::string(entry.name);
  return std::nullopt;
}

// A number of at most max_digits digits in `base`, nothing else.
std::optional<unsigned> parse_number(std::string_view text, int base, size_t max_digits) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (text.empty() || text.size() > max_digits || ec != std::errc() ||
      end != text.data() + text.size())
    return std::nullopt;
  return value;
}

} // namespace

std::optional<std::string> canonical_proto_name(std::string_view text) {
  for (auto name : {find_nocase(ip_protocols, text), find_nocase(ethertypes, text),
                    find_nocase(snap_protocols, text)})
    if (name)
      return name;
  for (std::string_view fixed : {"STP", "LLC"})
    if (equal_nocase(fixed, text))
      return std::string(fixed);
  if (auto number = parse_number(text, 10, 3); number && *number <= 255) {
    auto name = find_name(ip_protocols, static_cast<uint16_t>(*number));
    return name.empty() ? std::to_string(*number) : std::string(name);
  }
  std::string_view snap = "snap-";
  bool is_snap = text.size() > snap.size() && equal_nocase(text.substr(0, snap.size()), snap);
  if (is_snap)
    text.remove_prefix(snap.size());
  if (text.size() < 3 || !equal_nocase(text.substr(0, 2), "0x"))
    return std::nullopt;
  auto number = parse_number(text.substr(2), 16, 4);
  if (!number)
    return std::nullopt;
  auto value = static_cast<uint16_t>(*number);
  auto name = is_snap ? find_name(snap_protocols, value) : find_name(ethertypes, value);
  if (!name.empty())
    return std::string(name);
  return fmt::format("{}0x{:04x}", is_snap ? "SNAP-" : "", *number);
}

std::string proto_name(const tcf_flow_key &key) {
  if (key.kind == TCF_KIND_LINK)
    return link_name(key);
  auto name = find_name(ip_protocols, key.proto);
  return name.empty() ? std::to_string(key.proto) : std::string(name);
}

std::optional<uint8_t> ip_protocol_number(std::string_view name) {
  for (const auto &entry : ip_protocols)
    if (entry.name == name)
      return entry.number;
  unsigned number = 0;
  auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), number);
  if (error != std::errc() || end != name.data() + name.size() || number > 255)
    return std::nullopt;
  return number;
}

std::string addr_text(const tcf_flow_key &key, int side) {
  const auto *bytes = reinterpret_cast<const uint8_t *>(key.addr[side]);
  if (key.kind == TCF_KIND_LINK)
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", bytes[0], bytes[1], bytes[2],
                       bytes[3], bytes[4], bytes[5]);
  char text[INET6_ADDRSTRLEN];
  int family = key.ethertype == ETH_P_IPV6 ? AF_INET6 : AF_INET;
  if (!inet_ntop(family, bytes, text, sizeof(text)))
    return "?";
  return text;
}

bool has_transport_ports(const tcf_flow_key &key) { return key.kind == TCF_KIND_PORTS; }

std::string endpoint_text(const tcf_flow_key &key, int side) {
  std::string addr = addr_text(key, side);
  if (!has_transport_ports(key))
    return addr;
  if (key.ethertype == ETH_P_IPV6)
    return fmt::format("[{}]:{}", addr, key.port[side]);
  return fmt::format("{}:{}", addr, key.port[side]);
}

int canonicalise(tcf_flow_key &key) {
  for (int i = 0; i < 4; i++) {
    uint32_t a = ntohl(key.addr[0][i]), b = ntohl(key.addr[1][i]);
    if (a != b) {
      if (a < b)
        return TCF_DIR_FWD;
      goto swap;
    }
  }
  if (key.port[0] <= key.port[1])
    return TCF_DIR_FWD;
swap:
  std::swap(key.addr[0], key.addr[1]);
  std::swap(key.port[0], key.port[1]);
  return TCF_DIR_REV;
}

bool operator==(const tcf_flow_key &a, const tcf_flow_key &b) {
  return std::memcmp(&a, &b, sizeof(a)) == 0;
}

size_t FlowKeyHash::operator()(const tcf_flow_key &key) const {
  return fnv1a(bytes_of(key)); // the layout has no padding
}

} // namespace tcflows
