// The IPFIX encoder: wire layout checked byte by byte against RFC 7011 and
// RFC 5103, and the same messages decoded by an independent decoder (tshark).
#include "sinks/ipfix.h"
#include "sinks/ipfix_export.h"
#include "text_record.h"
#include "util/net_address.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

using namespace tcflows;
using namespace tcflows::ipfix;
using tcflows::test::binary;
using tcflows::test::TextRecord;
using tcflows::test::update_of;

namespace {

uint16_t get16(const std::vector<uint8_t> &b, size_t at) { return b.at(at) << 8 | b.at(at + 1); }
uint32_t get32(const std::vector<uint8_t> &b, size_t at) {
  return uint32_t{get16(b, at)} << 16 | get16(b, at + 2);
}
uint64_t get64(const std::vector<uint8_t> &b, size_t at) {
  return uint64_t{get32(b, at)} << 32 | get32(b, at + 4);
}

TextRecord tcp_record() {
  TextRecord r;
  r.uid = "C1";
  r.iface = "veth0";
  r.proto = "TCP";
  r.src_addr = "10.1.2.3";
  r.src_port = 40000;
  r.dst_addr = "192.0.2.80";
  r.dst_port = 443;
  r.vlan = 100;
  r.start_ns = 1'700'000'000'123'456'789;
  r.end_ns = 1'700'000'001'987'654'321;
  r.orig_pkts = 11;
  r.orig_bytes = 1234;
  r.resp_pkts = 9;
  r.resp_bytes = 56789;
  r.state = "RSTO";
  r.history = "ShADadR";
  r.orig_tcp_flags = 0x16; // SYN, RST, ACK
  r.resp_tcp_flags = 0x12; // SYN, ACK
  r.close_reason = "rst";
  return r;
}

TrafficDelta whole(const TextRecord &r) {
  return {r.start_ns, r.end_ns, r.orig_pkts, r.orig_bytes, r.resp_pkts, r.resp_bytes};
}

TextRecord icmp6_record() {
  TextRecord r = tcp_record();
  r.uid = "C2";
  r.proto = "ICMPv6";
  r.src_addr = "2001:db8::1";
  r.dst_addr = "2001:db8:0:1::2";
  r.src_port = 128; // echo request
  r.dst_port = 0;
  r.vlan = 0;
  r.history = "";
  r.close_reason = "idle";
  r.orig_guessed = false;
  return r;
}

// The record seen on interface `ifindex`, named as the text record says.
ConnRecord on(const TextRecord &text, uint32_t ifindex) {
  ConnRecord r = binary(text);
  r.key.ifindex = ifindex;
  return r;
}

EncodedRecord encoded(const TextRecord &text, uint32_t ifindex = 7) {
  ConnRecord r = on(text, ifindex);
  auto flow = flow_record(r, whole(text), end_reason(r.close_reason), text.iface);
  REQUIRE(flow);
  return encode(*flow);
}

// Offsets of the fixed fields in both templates (see layout in ipfix.cpp).
constexpr size_t v4_fixed = 6 * 8 + 3 * 4 + 4 * 2 + 2 + 3; // 73, then the name
constexpr size_t v6_fixed = 6 * 8 + 2 * 16 + 4 + 4 * 2 + 2 + 3;

} // namespace

TEST_CASE("message header, template set and data set layout") {
  Session session(42, 1400);
  std::vector<EncodedRecord> records = {encoded(tcp_record())};
  auto messages = session.pack(records, 1'700'000'002, true);
  REQUIRE(messages.size() == 1);
  const auto &b = messages[0].bytes;
  CHECK(messages[0].records == 1);
  CHECK(get16(b, 0) == 10);            // version
  CHECK(get16(b, 2) == b.size());      // length
  CHECK(get32(b, 4) == 1'700'000'002); // export time
  CHECK(get32(b, 8) == 0);             // sequence: no data record before
  CHECK(get32(b, 12) == 42);           // observation domain

  // Template set: id 2, two templates of 19 fields; reverse fields carry
  // the enterprise bit and PEN 29305.
  size_t at = 16;
  CHECK(get16(b, at) == 2);
  size_t set_length = get16(b, at + 2);
  CHECK(set_length == template_set().size());
  size_t t = at + 4;
  for (uint16_t id : {template_ipv4, template_ipv6}) {
    CHECK(get16(b, t) == id);
    REQUIRE(get16(b, t + 2) == 19);
    t += 4;
    int reverse = 0;
    for (int f = 0; f < 19; f++) {
      uint16_t element = get16(b, t);
      t += 4;
      if (element & 0x8000) {
        CHECK(get32(b, t) == reverse_pen);
        CHECK(((element & 0x7fff) == 1 || (element & 0x7fff) == 2 || (element & 0x7fff) == 6));
        t += 4;
        reverse++;
      }
    }
    CHECK(reverse == 3);
  }
  CHECK(t == at + set_length);

  // Data set 256: one record, fields in big-endian order.
  at += set_length;
  CHECK(get16(b, at) == template_ipv4);
  CHECK(get16(b, at + 2) == b.size() - at);
  size_t d = at + 4;
  CHECK(get64(b, d) == 1'700'000'000'123);     // flowStartMilliseconds
  CHECK(get64(b, d + 8) == 1'700'000'001'987); // flowEndMilliseconds
  CHECK(get64(b, d + 16) == 11);               // packetDeltaCount
  CHECK(get64(b, d + 24) == 1234);             // octetDeltaCount
  CHECK(get64(b, d + 32) == 9);                // reverse packetDeltaCount
  CHECK(get64(b, d + 40) == 56789);            // reverse octetDeltaCount
  CHECK(get32(b, d + 48) == 0x0a010203);       // 10.1.2.3
  CHECK(get32(b, d + 52) == 0xc0000250);       // 192.0.2.80
  CHECK(get32(b, d + 56) == 7);                // ingressInterface
  CHECK(get16(b, d + 60) == 40000);
  CHECK(get16(b, d + 62) == 443);
  CHECK(b.at(d + 64) == 0x16);    // S A R: SYN ACK RST (D is no flag)
  CHECK(b.at(d + 65) == 0x12);    // h a: SYN ACK
  CHECK(get16(b, d + 66) == 100); // vlanId
  CHECK(get16(b, d + 68) == 0);   // icmpTypeCodeIPv4
  CHECK(b.at(d + 70) == 6);       // TCP
  CHECK(b.at(d + 71) == 3);       // end of flow detected
  CHECK(b.at(d + 72) == 1);       // biflowDirection initiator
  CHECK(b.at(d + v4_fixed) == 5); // interfaceName length
  CHECK(std::string(b.begin() + d + v4_fixed + 1, b.end()) == "veth0");
}

TEST_CASE("IPv6 records use template 257 with 16-byte addresses and ICMPv6 type/code") {
  auto record = encoded(icmp6_record());
  CHECK(record.template_id == template_ipv6);
  const auto &b = record.bytes;
  REQUIRE(b.size() == v6_fixed + 1 + 5);
  CHECK(get32(b, 48) == 0x20010db8);
  CHECK(get32(b, 60) == 1);
  CHECK(get32(b, 64) == 0x20010db8);
  CHECK(get32(b, 68) == 1);
  CHECK(get32(b, 76) == 2);
  CHECK(get16(b, 84) == 0);        // source port
  CHECK(get16(b, 86) == 128 << 8); // destination port: type << 8 | code
  CHECK(b.at(88) == 0);            // no TCP flags
  CHECK(get16(b, 92) == 128 << 8); // icmpTypeCodeIPv6
  CHECK(b.at(94) == 58);
  CHECK(b.at(95) == 1); // idle timeout
}

TEST_CASE("flowEndReason from close_reason") {
  CHECK(end_reason(CloseReason::open) == EndReason::active_timeout);
  CHECK(end_reason(CloseReason::idle) == EndReason::idle_timeout);
  CHECK(end_reason(CloseReason::fin) == EndReason::end_of_flow);
  CHECK(end_reason(CloseReason::rst) == EndReason::end_of_flow);
  CHECK(end_reason(CloseReason::shutdown) == EndReason::forced_end);
  CHECK(end_reason(CloseReason::eof) == EndReason::forced_end);
}

TEST_CASE("tcpControlBits: the originator's flags forward, the responder's reverse") {
  TextRecord r = tcp_record();
  r.orig_tcp_flags = 0x1b; // SYN, FIN, PSH, ACK
  r.resp_tcp_flags = 0x16; // SYN, RST, ACK
  auto flow = flow_record(on(r, 1), whole(r), EndReason::end_of_flow, r.iface);
  REQUIRE(flow);
  CHECK(flow->tcp_flags == 0x1b);
  CHECK(flow->rev_tcp_flags == 0x16);
}

TEST_CASE("records that are not IP have no template") {
  TextRecord arp = tcp_record();
  arp.proto = "ARP";
  arp.src_addr = "02:00:00:00:00:01";
  arp.dst_addr = "ff:ff:ff:ff:ff:ff";
  CHECK_FALSE(flow_record(on(arp, 1), whole(arp), EndReason::idle_timeout, arp.iface));
  TextRecord gre = tcp_record();
  gre.proto = "47";
  auto flow = flow_record(on(gre, 1), whole(gre), EndReason::idle_timeout, gre.iface);
  REQUIRE(flow);
  CHECK(flow->proto == 47);
  CHECK(flow->tcp_flags == 0);
}

TEST_CASE("a delta record carries its window, narrowed to the connection's packets") {
  TextRecord r = tcp_record();
  TrafficDelta window{r.start_ns + 5'000'000'000, r.start_ns + 10'000'000'000, 1, 2, 3, 4};
  r.end_ns = r.start_ns + 7'500'000'000;
  auto flow = flow_record(on(r, 1), window, EndReason::active_timeout, r.iface);
  REQUIRE(flow);
  CHECK(flow->start_ms == (r.start_ns + 5'000'000'000) / 1'000'000);
  CHECK(flow->end_ms == r.end_ns / 1'000'000);
  CHECK(flow->pkts == 1);
  CHECK(flow->rev_bytes == 4);
}

TEST_CASE("packing: messages stay under the size, sequence numbers count data records") {
  Session session(1, 1400);
  std::vector<EncodedRecord> records;
  for (int i = 0; i < 100; i++)
    records.push_back(encoded(i % 3 ? tcp_record() : icmp6_record()));
  auto messages = session.pack(records, 1, true);
  REQUIRE(messages.size() > 5);
  uint32_t expected_sequence = 0, total = 0;
  for (const auto &m : messages) {
    CHECK(m.bytes.size() <= 1400);
    CHECK(get16(m.bytes, 2) == m.bytes.size());
    CHECK(get32(m.bytes, 8) == expected_sequence);
    expected_sequence += m.records;
    // The sets tile the message exactly.
    size_t at = 16;
    while (at < m.bytes.size())
      at += get16(m.bytes, at + 2);
    CHECK(at == m.bytes.size());
    total += m.records;
  }
  CHECK(total == 100);
  CHECK(session.sequence() == 100);
  CHECK(get16(messages[0].bytes, 16) == template_set_id);
  CHECK(get16(messages[1].bytes, 16) != template_set_id); // templates only once
  session.restart();
  CHECK(get32(session.pack(records, 1, false)[0].bytes, 8) == 0);
  CHECK(session.templates_only(1).records == 0);
}

TEST_CASE("active timeout: open connections as deltas, the final one with the rest") {
  ActiveTimeout active(std::chrono::seconds(60));
  TextRecord r = tcp_record();
  r.close_reason.reset();
  uint64_t t0 = r.start_ns;
  auto update = [&](uint64_t pkts, uint64_t at) {
    return update_of(r, {at - 10'000'000'000, at, pkts, pkts * 100, pkts, pkts * 1000});
  };
  CHECK(active.take(std::vector{update(5, t0 + 10'000'000'000)}, t0 + 10'000'000'000).empty());
  CHECK(active.take(std::vector{update(7, t0 + 20'000'000'000)}, t0 + 20'000'000'000).empty());
  // 60 s after the start: the 12 packets so far go out as one delta record.
  auto due = active.take({}, t0 + 60'000'000'000);
  REQUIRE(due.size() == 1);
  CHECK(due[0].reason == EndReason::active_timeout);
  CHECK(due[0].traffic.orig_pkts == 12);
  CHECK(due[0].traffic.resp_bytes == 12'000);
  CHECK(due[0].traffic.from_ns == t0);
  CHECK(due[0].traffic.to_ns == t0 + 20'000'000'000);
  CHECK(active.take({}, t0 + 130'000'000'000).empty()); // nothing new: nothing due
  r.close_reason = "fin";
  due = active.take(std::vector{update(3, t0 + 140'000'000'000)}, t0 + 140'000'000'000);
  REQUIRE(due.size() == 1);
  CHECK(due[0].reason == EndReason::end_of_flow);
  CHECK(due[0].traffic.orig_pkts == 3);
  CHECK(active.open() == 0);
}

TEST_CASE("collector URLs and listen addresses") {
  auto udp = parse_collector_url("udp://127.0.0.1:4739");
  REQUIRE(udp);
  CHECK_FALSE(udp->tcp);
  CHECK(udp->host == "127.0.0.1");
  CHECK(udp->port == 4739);
  auto tcp = parse_collector_url("tcp://[::1]:4740");
  REQUIRE(tcp);
  CHECK(tcp->tcp);
  CHECK(tcp->host == "::1");
  CHECK(parse_collector_url("tcp://collector.example:4739"));
  for (const char *bad : {"127.0.0.1:4739", "udp://127.0.0.1", "udp://::1:4739", "udp://:4739",
                          "udp://h:0", "udp://h:65536", "sctp://h:1", "udp://h:12x"})
    CHECK_MESSAGE(!parse_collector_url(bad), bad);

  auto port = parse_listen_address("9469");
  REQUIRE(port);
  CHECK(port->first.empty());
  CHECK(port->second == 9469);
  CHECK(parse_listen_address("0.0.0.0:9469")->first == "0.0.0.0");
  CHECK(parse_listen_address("[::1]:9469")->first == "::1");
  for (const char *bad : {"", "x", ":9469", "::1:9469", "1.2.3.4:", "70000"})
    CHECK_MESSAGE(!parse_listen_address(bad), bad);
}

namespace {

// A pcap (LINKTYPE_RAW) with each message in an IPv4/UDP datagram to 4739.
void write_pcap(const std::string &path, const std::vector<Message> &messages) {
  std::ofstream out(path, std::ios::binary);
  auto le32 = [&](uint32_t v) { out.write(reinterpret_cast<const char *>(&v), 4); };
  auto le16 = [&](uint16_t v) { out.write(reinterpret_cast<const char *>(&v), 2); };
  le32(0xa1b2c3d4), le16(2), le16(4), le32(0), le32(0), le32(65535), le32(101);
  for (const auto &m : messages) {
    std::vector<uint8_t> p = {0x45, 0, 0,   0, 0, 1, 0,    0,    64,   17,   0, 0, 127, 0,
                              0,    1, 127, 0, 0, 1, 0x9c, 0x40, 0x12, 0x83, 0, 0, 0,   0};
    size_t ip_length = p.size() + m.bytes.size();
    p[2] = ip_length >> 8, p[3] = ip_length & 0xff;
    p[24] = (ip_length - 20) >> 8, p[25] = (ip_length - 20) & 0xff;
    p.insert(p.end(), m.bytes.begin(), m.bytes.end());
    le32(1'700'000'002), le32(0), le32(p.size()), le32(p.size());
    out.write(reinterpret_cast<const char *>(p.data()), p.size());
  }
}

// tshark's decode, one JSON object (the cflow layer) per message.
std::vector<nlohmann::json> tshark_decode(const std::string &pcap) {
  std::string command = "tshark -r " + pcap + " -d udp.port==4739,cflow -T ek 2>&1";
  std::unique_ptr<FILE, int (*)(FILE *)> pipe(::popen(command.c_str(), "r"), ::pclose);
  REQUIRE_MESSAGE(pipe, "tshark (Debian package tshark) is needed");
  std::string text;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof(buffer), pipe.get()))
    text.append(buffer, n);
  std::vector<nlohmann::json> layers;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    std::string line = text.substr(start, end - start);
    start = end == std::string::npos ? text.size() : end + 1;
    if (line.find("\"layers\"") == std::string::npos)
      continue;
    auto json = nlohmann::json::parse(line);
    REQUIRE_MESSAGE(json["layers"].contains("cflow"), line);
    layers.push_back(json["layers"]["cflow"]);
  }
  REQUIRE_MESSAGE(!layers.empty(), text);
  return layers;
}

// ek gives a single value as a scalar and repeated ones as an array.
std::vector<std::string> values(const nlohmann::json &layer, const char *field) {
  std::vector<std::string> out;
  if (!layer.contains(field))
    return out;
  const auto &v = layer[field];
  for (const auto &item : v.is_array() ? v : nlohmann::json::array({v}))
    out.push_back(item.is_string() ? item.get<std::string>() : item.dump());
  return out;
}

using Strings = std::vector<std::string>;

} // namespace

TEST_CASE("tshark decodes the messages: header, templates, v4 and v6 biflows") {
  auto dir = std::filesystem::temp_directory_path() / ("tcflows-ipfix-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string pcap = (dir / "export.pcap").string();

  TextRecord v4 = tcp_record();
  TextRecord v6 = icmp6_record();
  v6.orig_pkts = 3, v6.orig_bytes = 312, v6.resp_pkts = 2, v6.resp_bytes = 208;
  Session session(42, 1400);
  std::vector<EncodedRecord> records = {encoded(v4), encoded(v6, 9)};
  write_pcap(pcap, session.pack(records, 1'700'000'002, true));
  auto layers = tshark_decode(pcap);
  REQUIRE(layers.size() == 1);
  const auto &l = layers[0];

  CHECK(values(l, "cflow_cflow_version") == Strings{"10"});
  CHECK(values(l, "cflow_cflow_exporttime") == Strings{"1700000002"});
  CHECK(values(l, "cflow_cflow_sequence") == Strings{"0"});
  CHECK(values(l, "cflow_cflow_od_id") == Strings{"42"});
  CHECK(values(l, "cflow_cflow_flowset_id") == Strings{"2", "256", "257"});
  CHECK(values(l, "cflow_cflow_template_id") == Strings{"256", "257"});
  CHECK(values(l, "cflow_cflow_template_ipfix_field_pen") == Strings(6, "29305"));
  // Forward then reverse, record by record.
  CHECK(values(l, "cflow_cflow_packets") == Strings{"11", "9", "3", "2"});
  CHECK(values(l, "cflow_cflow_octets") == Strings{"1234", "56789", "312", "208"});
  CHECK(values(l, "cflow_cflow_srcaddr") == Strings{"10.1.2.3"});
  CHECK(values(l, "cflow_cflow_dstaddr") == Strings{"192.0.2.80"});
  CHECK(values(l, "cflow_cflow_srcaddrv6") == Strings{"2001:db8::1"});
  CHECK(values(l, "cflow_cflow_dstaddrv6") == Strings{"2001:db8:0:1::2"});
  CHECK(values(l, "cflow_cflow_srcport") == Strings{"40000", "0"});
  CHECK(values(l, "cflow_cflow_dstport") == Strings{"443", "32768"});
  CHECK(values(l, "cflow_cflow_protocol") == Strings{"6", "58"});
  CHECK(values(l, "cflow_cflow_tcpflags") == Strings{"0x16", "0x12", "0x00", "0x00"});
  CHECK(values(l, "cflow_cflow_flow_end_reason") == Strings{"3", "1"});
  CHECK(values(l, "cflow_cflow_biflow_direction") == Strings{"1", "1"});
  CHECK(values(l, "cflow_cflow_vlanid") == Strings{"100", "0"});
  CHECK(values(l, "cflow_cflow_inputint") == Strings{"7", "9"});
  CHECK(values(l, "cflow_cflow_if_name") == Strings{"veth0", "veth0"});
  CHECK(values(l, "cflow_cflow_icmp_ipv6_type") == Strings{"128"});
  CHECK(values(l, "cflow_cflow_abstimestart") ==
        Strings{"2023-11-14T22:13:20.123000000Z", "2023-11-14T22:13:20.123000000Z"});
  CHECK(values(l, "cflow_cflow_abstimeend") ==
        Strings{"2023-11-14T22:13:21.987000000Z", "2023-11-14T22:13:21.987000000Z"});
  std::filesystem::remove_all(dir);
}

TEST_CASE("tshark: many messages, their lengths and sequence numbers") {
  auto dir = std::filesystem::temp_directory_path() / ("tcflows-ipfix-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string pcap = (dir / "many.pcap").string();
  Session session(1, 1400);
  std::vector<EncodedRecord> records;
  for (int i = 0; i < 200; i++) {
    TextRecord r = i % 2 ? tcp_record() : icmp6_record();
    r.orig_pkts = i + 1;
    records.push_back(encoded(r));
  }
  auto messages = session.pack(records, 1'700'000'002, true);
  write_pcap(pcap, messages);
  auto layers = tshark_decode(pcap);
  REQUIRE(layers.size() == messages.size());
  uint64_t sequence = 0, flows = 0;
  for (size_t i = 0; i < layers.size(); i++) {
    CHECK(values(layers[i], "cflow_cflow_len") ==
          Strings{std::to_string(messages[i].bytes.size())});
    CHECK(values(layers[i], "cflow_cflow_sequence") == Strings{std::to_string(sequence)});
    auto packets = values(layers[i], "cflow_cflow_packets");
    CHECK(packets.size() == 2 * messages[i].records);
    for (size_t p = 0; p < packets.size(); p += 2)
      CHECK(packets[p] == std::to_string(flows + p / 2 + 1)); // in order, none lost
    flows += messages[i].records;
    sequence += messages[i].records;
  }
  CHECK(flows == 200);
  std::filesystem::remove_all(dir);
}
