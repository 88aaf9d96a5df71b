// Every capture in tests/pcaps run frame by frame through the program: no
// test_run failure, every frame either in a flow or counted malformed, and
// no flow under an address (MAC, IP, VLAN id, port, echo identifier) that
// tshark does not see in the capture.
#include "harness.h"
#include "summary.h"
#include "track/flow.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <linux/if_ether.h>
#include <pcap/pcap.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>
#include <sstream>
#include <string>

using namespace tcflows;
using namespace tcflows::test;

namespace {

// test_run copies a frame into one page: larger frames (the captures of TSO
// super-packets and jumbograms) are cut to this size, as a snap length would.
constexpr size_t max_frame = 3584;

struct Captured {
  Bytes data;
  uint64_t ts_ns;
  bool cut;
};

std::vector<Captured> read_capture(const std::string &path) {
  char err[PCAP_ERRBUF_SIZE];
  std::unique_ptr<pcap_t, decltype(&pcap_close)> pcap(
      pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, err),
      pcap_close);
  REQUIRE_MESSAGE(pcap != nullptr, std::string(err));
  REQUIRE_MESSAGE(pcap_datalink(pcap.get()) == DLT_EN10MB, "not an Ethernet capture");
  std::vector<Captured> frames;
  pcap_pkthdr *hdr;
  const u_char *data;
  while (pcap_next_ex(pcap.get(), &hdr, &data) == 1) {
    size_t len = std::min<size_t>(hdr->caplen, max_frame);
    frames.push_back({Bytes(data, data + len),
                      uint64_t(hdr->ts.tv_sec) * 1'000'000'000 + uint64_t(hdr->ts.tv_usec),
                      len < hdr->caplen});
  }
  return frames;
}

// What tshark sees anywhere in the capture, tunnels and ICMP errors included.
struct Reference {
  std::set<Bytes> addrs; // MACs (6 bytes), IPv4 (4), IPv6 (16)
  std::set<uint16_t> vlans, ports, echo_ids;
};

void add_address(Reference &ref, const std::string &text) {
  uint8_t buf[16];
  if (inet_pton(AF_INET, text.c_str(), buf) == 1)
    ref.addrs.insert(Bytes(buf, buf + 4));
  else if (inet_pton(AF_INET6, text.c_str(), buf) == 1)
    ref.addrs.insert(Bytes(buf, buf + 16));
  else if (unsigned m[6]; std::sscanf(text.c_str(), "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3],
                                      &m[4], &m[5]) == 6)
    ref.addrs.insert(Bytes(m, m + 6));
  else
    FAIL((std::string("tshark printed an address we cannot read: ") + text));
}

enum class Field { addr, vlan, port, echo_id };

// The tshark fields of the reference, in the order of its output columns.
constexpr std::pair<const char *, Field> fields[] = {
    {"eth.src", Field::addr},       {"eth.dst", Field::addr},
    {"ip.src", Field::addr},        {"ip.dst", Field::addr},
    {"ipv6.src", Field::addr},      {"ipv6.dst", Field::addr},
    {"vlan.id", Field::vlan},       {"ieee8021ad.id", Field::vlan},
    {"tcp.port", Field::port},      {"udp.port", Field::port},
    {"sctp.port", Field::port},     {"dccp.port", Field::port},
    {"icmp.ident", Field::echo_id}, {"icmpv6.echo.identifier", Field::echo_id},
};

void add_values(Reference &ref, Field field, const std::string &values) {
  std::istringstream in(values);
  for (std::string v; std::getline(in, v, ',');) {
    switch (field) {
    case Field::addr:
      add_address(ref, v);
      break;
    case Field::vlan:
      ref.vlans.insert(uint16_t(std::stoul(v)));
      break;
    case Field::port:
      ref.ports.insert(uint16_t(std::stoul(v)));
      break;
    case Field::echo_id:
      ref.echo_ids.insert(uint16_t(std::stoul(v, nullptr, 0)));
      break;
    }
  }
}

Reference tshark_reference(const std::string &path) {
  std::string cmd =
      "tshark -n -r '" + path + "' -T fields -E occurrence=a -E aggregator=, -E separator=/t";
  for (auto [name, field] : fields)
    cmd += std::string(" -e ") + name;
  std::unique_ptr<FILE, decltype(&pclose)> out(popen((cmd + " 2>/dev/null").c_str(), "r"), pclose);
  REQUIRE_MESSAGE(out != nullptr, "cannot run tshark (apt-get install tshark)");
  Reference ref;
  char line[8192];
  while (std::fgets(line, sizeof(line), out.get())) {
    std::istringstream row(std::string(line, strcspn(line, "\n")));
    std::string values;
    for (size_t column = 0; std::getline(row, values, '\t') && column < std::size(fields); column++)
      if (!values.empty())
        add_values(ref, fields[column].second, values);
  }
  REQUIRE_MESSAGE(!ref.addrs.empty(), "tshark saw no address in the capture");
  return ref;
}

// Frames the kernel refuses before the program runs (see test_parser.cpp).
bool refused_by_test_run(const Bytes &f) {
  if (f.size() < ETH_HLEN)
    return true;
  uint16_t type = uint16_t(f[12] << 8 | f[13]);
  return (type == ETH_P_IP && f.size() < ETH_HLEN + 20) ||
         (type == ETH_P_IPV6 && f.size() < ETH_HLEN + 40);
}

struct RunStats {
  uint64_t run = 0, refused = 0, cut = 0;
};

RunStats run_capture(Harness &h, const std::vector<Captured> &frames) {
  RunStats stats;
  for (const Captured &frame : frames) {
    stats.cut += frame.cut;
    if (refused_by_test_run(frame.data)) {
      stats.refused++;
      continue;
    }
    h.run(frame.data, {.tstamp = frame.ts_ns});
    stats.run++;
  }
  return stats;
}

Bytes key_addr(const tcf_flow_key &key, int side) {
  auto *p = reinterpret_cast<const uint8_t *>(key.addr[side]);
  size_t len = key.kind == TCF_KIND_LINK ? 6 : key.ethertype == ETH_P_IP ? 4 : 16;
  return Bytes(p, p + len);
}

void check_key(const tcf_flow_key &key, const Reference &ref) {
  INFO("flow: ", describe(key));
  CHECK(ref.addrs.count(key_addr(key, 0)) == 1);
  CHECK(ref.addrs.count(key_addr(key, 1)) == 1);
  for (uint16_t vlan : key.vlan)
    CHECK((vlan == 0 || ref.vlans.count(vlan) == 1));
  if (key.kind == TCF_KIND_PORTS) {
    CHECK(ref.ports.count(key.port[0]) == 1);
    CHECK(ref.ports.count(key.port[1]) == 1);
  }
  if (key.kind == TCF_KIND_ICMP_ECHO)
    CHECK(ref.echo_ids.count(key.port[0]) == 1);
}

// "ports 2 echo 1 link 3": flows per kind.
std::string kinds(const std::vector<SlotEntry> &flows) {
  static constexpr const char *names[] = {"ports", "echo", "icmp", "ip", "frag", "link"};
  int count[std::size(names)] = {};
  for (const SlotEntry &f : flows)
    if (f.key.kind < std::size(names))
      count[f.key.kind]++;
  std::string text;
  for (size_t i = 0; i < std::size(names); i++)
    if (count[i])
      text += fmt::format("{}{} {}", text.empty() ? "" : " ", names[i], count[i]);
  return text;
}

std::string summary_line(const std::string &name, const RunStats &stats, const Harness &h,
                         const std::vector<SlotEntry> &flows) {
  Counters c = h.counters();
  std::string line =
      fmt::format("{:<34} frames {:>3} (refused {}, cut {}) flows {:>2} ({})", name,
                  stats.run + stats.refused, stats.refused, stats.cut, flows.size(), kinds(flows));
  line += fmt::format(" malformed {}", c[TCF_CTR_MALFORMED]);
  for (int i = TCF_CTR_MAL_L2; i <= TCF_CTR_MAL_L4; i++)
    if (c[i])
      line += fmt::format(" {} {}", counter_name(i), c[i]);
  if (c[TCF_CTR_FRAG_UNMATCHED])
    line += fmt::format(" frag_unmatched {}", c[TCF_CTR_FRAG_UNMATCHED]);
  return line;
}

void check_capture(Harness &h, const std::filesystem::path &path) {
  INFO("capture: ", path.filename().string());
  h.reset();
  RunStats stats = run_capture(h, read_capture(path));
  Reference ref = tshark_reference(path);
  auto flows = h.flows();
  uint64_t counted = 0;
  for (const SlotEntry &f : flows) {
    counted += f.val.pkts[0] + f.val.pkts[1];
    check_key(f.key, ref);
  }
  for (const SlotEntry &e : h.ended())
    counted += e.val.pkts[0] + e.val.pkts[1];
  Counters c = h.counters();
  CHECK(c[TCF_CTR_FRAMES] == stats.run);
  CHECK(c[TCF_CTR_GSO_FRAMES] == 0);
  CHECK(c[TCF_CTR_UNTRACKED_PKTS] == 0);
  CHECK(counted + c[TCF_CTR_MALFORMED] == stats.run);
  summary("{}", summary_line(path.filename().string(), stats, h, flows));
}

TEST_CASE("every capture in tests/pcaps") {
  std::vector<std::filesystem::path> files;
  for (const auto &entry : std::filesystem::directory_iterator(TCF_TEST_PCAPS)) {
    auto ext = entry.path().extension();
    if (ext == ".pcap" || ext == ".pcapng")
      files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  REQUIRE(!files.empty());
  for (const auto &file : files)
    check_capture(shared_harness(), file);
}

} // namespace
