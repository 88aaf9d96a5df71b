#include "sinks/ipfix.h"

#include <linux/if_ether.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>

namespace tcflows::ipfix {
namespace {

// IANA information element numbers.
enum Element : uint16_t {
  octet_delta_count = 1,
  packet_delta_count = 2,
  protocol_identifier = 4,
  tcp_control_bits = 6,
  source_transport_port = 7,
  source_ipv4_address = 8,
  ingress_interface = 10,
  destination_transport_port = 11,
  destination_ipv4_address = 12,
  source_ipv6_address = 27,
  destination_ipv6_address = 28,
  icmp_type_code_ipv4 = 32,
  vlan_id = 58,
  interface_name = 82,
  flow_end_reason = 136,
  icmp_type_code_ipv6 = 139,
  flow_start_milliseconds = 152,
  flow_end_milliseconds = 153,
  biflow_direction = 239,
};

constexpr uint16_t variable_length = 65535;
constexpr uint16_t enterprise_bit = 0x8000;

struct Field {
  uint16_t id;
  uint16_t length;
  bool reverse = false; // the RFC 5103 reverse element (PEN 29305)
};

// One table per template drives both the template record and the data
// records, so the two cannot disagree. Fixed-size fields first, largest
// first; the variable-length interface name last.
template <uint16_t SourceAddress, uint16_t DestinationAddress, uint16_t AddressLength,
          uint16_t IcmpTypeCode>
constexpr std::array<Field, 19> layout{{
    {flow_start_milliseconds, 8},
    {flow_end_milliseconds, 8},
    {packet_delta_count, 8},
    {octet_delta_count, 8},
    {packet_delta_count, 8, true},
    {octet_delta_count, 8, true},
    {SourceAddress, AddressLength},
    {DestinationAddress, AddressLength},
    {ingress_interface, 4},
    {source_transport_port, 2},
    {destination_transport_port, 2},
    // Reduced-size encoding (RFC 7011 §6.2) of the 16-bit element: the
    // 1 octet (RFC 7011's reduced size): pmacct reads only that, and the
    // flags above CWR are reserved.
    {tcp_control_bits, 1},
    {tcp_control_bits, 1, true},
    {vlan_id, 2},
    {IcmpTypeCode, 2},
    {protocol_identifier, 1},
    {flow_end_reason, 1},
    {biflow_direction, 1},
    {interface_name, variable_length},
}};

constexpr auto &ipv4_layout =
    layout<source_ipv4_address, destination_ipv4_address, 4, icmp_type_code_ipv4>;
constexpr auto &ipv6_layout =
    layout<source_ipv6_address, destination_ipv6_address, 16, icmp_type_code_ipv6>;

std::span<const Field> fields(bool ipv6) {
  if (ipv6)
    return ipv6_layout;
  return ipv4_layout;
}

void put8(std::vector<uint8_t> &out, uint8_t value) { out.push_back(value); }
void put16(std::vector<uint8_t> &out, uint16_t value) {
  out.push_back(value >> 8);
  out.push_back(value & 0xff);
}
void put32(std::vector<uint8_t> &out, uint32_t value) {
  put16(out, value >> 16);
  put16(out, value & 0xffff);
}
void put64(std::vector<uint8_t> &out, uint64_t value) {
  put32(out, value >> 32);
  put32(out, value & 0xffffffff);
}
void patch16(std::vector<uint8_t> &out, size_t at, uint16_t value) {
  out[at] = value >> 8;
  out[at + 1] = value & 0xff;
}
void patch32(std::vector<uint8_t> &out, size_t at, uint32_t value) {
  patch16(out, at, value >> 16);
  patch16(out, at + 2, value & 0xffff);
}

// RFC 7011 §7: a length prefix of one octet, or 255 and two octets.
void put_string(std::vector<uint8_t> &out, const std::string &text) {
  size_t length = std::min<size_t>(text.size(), 0xffff);
  if (length < 255) {
    put8(out, length);
  } else {
    put8(out, 255);
    put16(out, length);
  }
  out.insert(out.end(), text.begin(), text.begin() + length);
}

void put_field(std::vector<uint8_t> &out, const Field &field, const FlowRecord &r) {
  switch (field.id) {
  case flow_start_milliseconds:
    return put64(out, r.start_ms);
  case flow_end_milliseconds:
    return put64(out, r.end_ms);
  case packet_delta_count:
    return put64(out, field.reverse ? r.rev_pkts : r.pkts);
  case octet_delta_count:
    return put64(out, field.reverse ? r.rev_bytes : r.bytes);
  case source_ipv4_address:
  case source_ipv6_address:
    out.insert(out.end(), r.src_addr, r.src_addr + field.length);
    return;
  case destination_ipv4_address:
  case destination_ipv6_address:
    out.insert(out.end(), r.dst_addr, r.dst_addr + field.length);
    return;
  case ingress_interface:
    return put32(out, r.ifindex);
  case source_transport_port:
    return put16(out, r.src_port);
  case destination_transport_port:
    return put16(out, r.dst_port);
  case tcp_control_bits:
    return put8(out, field.reverse ? r.rev_tcp_flags : r.tcp_flags);
  case vlan_id:
    return put16(out, r.vlan);
  case icmp_type_code_ipv4:
  case icmp_type_code_ipv6:
    return put16(out, r.icmp_type_code);
  case protocol_identifier:
    return put8(out, r.proto);
  case flow_end_reason:
    return put8(out, static_cast<uint8_t>(r.end_reason));
  case biflow_direction:
    return put8(out, r.biflow_direction);
  case interface_name:
    return put_string(out, r.iface);
  }
}

void put_template(std::vector<uint8_t> &out, uint16_t id, std::span<const Field> list) {
  put16(out, id);
  put16(out, list.size());
  for (const auto &field : list) {
    put16(out, field.reverse ? field.id | enterprise_bit : field.id);
    put16(out, field.length);
    if (field.reverse)
      put32(out, reverse_pen);
  }
}

} // namespace

EndReason end_reason(CloseReason close_reason) {
  switch (close_reason) {
  case CloseReason::open:
    return EndReason::active_timeout;
  case CloseReason::idle:
    return EndReason::idle_timeout;
  case CloseReason::fin:
  case CloseReason::rst:
    return EndReason::end_of_flow;
  case CloseReason::shutdown:
  case CloseReason::eof:
    break;
  }
  return EndReason::forced_end;
}

std::optional<FlowRecord> flow_record(const ConnRecord &record, const TrafficDelta &traffic,
                                      EndReason reason, std::string iface) {
  const tcf_flow_key &key = record.key;
  if (key.kind == TCF_KIND_LINK)
    return std::nullopt;
  FlowRecord r;
  r.ipv6 = key.ethertype == ETH_P_IPV6;
  std::memcpy(r.src_addr, key.addr[record.orig], sizeof(r.src_addr));
  std::memcpy(r.dst_addr, key.addr[record.resp()], sizeof(r.dst_addr));
  r.proto = key.proto;
  r.src_port = record.src_port;
  r.dst_port = record.dst_port;
  if (r.proto == IPPROTO_ICMP || r.proto == IPPROTO_ICMPV6) {
    // The record holds type and code in the ports (Zeek); collectors expect
    // them in the destination port (NetFlow) and in icmpTypeCode.
    r.icmp_type_code = static_cast<uint16_t>(record.src_port << 8 | (record.dst_port & 0xff));
    r.src_port = 0;
    r.dst_port = r.icmp_type_code;
  }
  if (r.proto == IPPROTO_TCP) {
    r.tcp_flags = record.orig_tcp_flags;
    r.rev_tcp_flags = record.resp_tcp_flags;
  }
  // The traffic's window, narrowed to the connection's first and last packet.
  uint64_t start = traffic.from_ns ? std::max(traffic.from_ns, record.start_ns) : record.start_ns;
  uint64_t end = traffic.to_ns ? std::min(traffic.to_ns, record.end_ns) : record.end_ns;
  r.start_ms = start / 1'000'000;
  r.end_ms = std::max(start, end) / 1'000'000;
  r.pkts = traffic.orig_pkts;
  r.bytes = traffic.orig_bytes;
  r.rev_pkts = traffic.resp_pkts;
  r.rev_bytes = traffic.resp_bytes;
  r.end_reason = reason;
  r.biflow_direction = record.orig_guessed ? 0 : 1;
  r.vlan = record.vlan();
  r.ifindex = record.ifindex();
  r.iface = std::move(iface);
  return r;
}

EncodedRecord encode(const FlowRecord &record) {
  EncodedRecord encoded;
  encoded.template_id = record.ipv6 ? template_ipv6 : template_ipv4;
  for (const auto &field : fields(record.ipv6))
    put_field(encoded.bytes, field, record);
  return encoded;
}

std::vector<uint8_t> template_set() {
  std::vector<uint8_t> out;
  put16(out, template_set_id);
  put16(out, 0);
  put_template(out, template_ipv4, fields(false));
  put_template(out, template_ipv6, fields(true));
  patch16(out, 2, out.size());
  return out;
}

Session::Session(uint32_t domain_id, size_t max_message_bytes)
    : domain_id_(domain_id), max_bytes_(std::min<size_t>(max_message_bytes, 0xffff)) {}

namespace {

// Builds one message at a time: header, then sets of records.
struct Packer {
  std::vector<Message> out;
  Message message;
  uint16_t set_id = 0;
  size_t set_start = 0;

  void open(uint32_t export_time_s, uint32_t domain_id) {
    message = {};
    set_id = 0;
    put16(message.bytes, version);
    put16(message.bytes, 0); // length, patched at close
    put32(message.bytes, export_time_s);
    put32(message.bytes, 0); // sequence number, patched at close
    put32(message.bytes, domain_id);
  }
  void close_set() {
    if (set_id)
      patch16(message.bytes, set_start + 2, message.bytes.size() - set_start);
    set_id = 0;
  }
  void close(uint32_t &sequence) {
    close_set();
    patch16(message.bytes, 2, message.bytes.size());
    patch32(message.bytes, 8, sequence);
    sequence += message.records;
    out.push_back(std::move(message));
  }
  void add(const EncodedRecord &record) {
    if (set_id != record.template_id) {
      close_set();
      set_id = record.template_id;
      set_start = message.bytes.size();
      put16(message.bytes, set_id);
      put16(message.bytes, 0);
    }
    message.bytes.insert(message.bytes.end(), record.bytes.begin(), record.bytes.end());
    message.records++;
  }
  size_t room_needed(const EncodedRecord &record) const {
    return record.bytes.size() + (set_id == record.template_id ? 0 : 4);
  }
};

} // namespace

std::vector<Message> Session::pack(std::span<const EncodedRecord> records, uint32_t export_time_s,
                                   bool templates) {
  Packer packer;
  packer.open(export_time_s, domain_id_);
  if (templates) {
    auto set = template_set();
    packer.message.bytes.insert(packer.message.bytes.end(), set.begin(), set.end());
  }
  for (const auto &record : records) {
    if (packer.message.records > 0 &&
        packer.message.bytes.size() + packer.room_needed(record) > max_bytes_) {
      packer.close(sequence_);
      packer.open(export_time_s, domain_id_);
    }
    packer.add(record);
  }
  if (packer.message.records > 0 || templates)
    packer.close(sequence_);
  return std::move(packer.out);
}

Message Session::templates_only(uint32_t export_time_s) {
  return std::move(pack({}, export_time_s, true).front());
}

} // namespace tcflows::ipfix
