// Capture files as the TC program takes them: link headers made Ethernet,
// frames the snap length cut filled up, over-long ones cut, bad ones counted;
// several files merged in time order.
#include "capture/capture_set.h"
#include "capture/pcap_file.h"

#include <doctest/doctest.h>
#include <linux/if_ether.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

using namespace tcflows;

namespace {

using Bytes = std::vector<uint8_t>;

struct Record {
  uint32_t usec;
  Bytes data;
  uint32_t wire_len = 0; // 0: as captured
};

void put32(Bytes &out, uint32_t v) {
  for (int i = 0; i < 4; i++)
    out.push_back(uint8_t(v >> (8 * i)));
}

// A classic little-endian pcap file of `link_type`, removed at scope exit.
struct PcapOnDisk {
  std::string path;
  PcapOnDisk(uint32_t link_type, const std::vector<Record> &records) {
    char name[] = "/tmp/tcflows-capture-XXXXXX";
    int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    path = name;
    Bytes out;
    put32(out, 0xA1B2C3D4);
    out.insert(out.end(), {2, 0, 4, 0});
    put32(out, 0), put32(out, 0), put32(out, 65535), put32(out, link_type);
    for (const auto &r : records) {
      put32(out, 1), put32(out, r.usec), put32(out, uint32_t(r.data.size()));
      put32(out, r.wire_len ? r.wire_len : uint32_t(r.data.size()));
      out.insert(out.end(), r.data.begin(), r.data.end());
    }
    REQUIRE(write(fd, out.data(), out.size()) == ssize_t(out.size()));
    close(fd);
  }
  ~PcapOnDisk() { unlink(path.c_str()); }
};

PcapFile open_file(const std::string &path) {
  auto opened = PcapFile::open(path);
  REQUIRE(std::holds_alternative<PcapFile>(opened));
  return std::move(std::get<PcapFile>(opened));
}

Bytes ethernet_frame(size_t size) {
  Bytes frame(size, 0xab);
  frame[12] = 0x08, frame[13] = 0x00;
  return frame;
}

} // namespace

TEST_CASE("Linux cooked 802.2 LLC: an 802.3 length, the sender's MAC, outgoing") {
  Bytes sll = {0, 4, 0, 1, 0, 6, 2, 0, 0, 0, 0, 9, 0, 0, 0, 4}; // outgoing, LLC
  Bytes llc = {0x42, 0x42, 0x03, 1, 2, 3};
  sll.insert(sll.end(), llc.begin(), llc.end());
  PcapOnDisk file(113, {{7, sll}});
  PcapFile pcap = open_file(file.path);
  CaptureStats stats;
  auto frame = pcap.next(stats);
  REQUIRE(frame);
  CHECK(frame->outgoing);
  CHECK(frame->ts_ns == 1'000'007'000);
  REQUIRE(frame->data.size() == ETH_HLEN + llc.size());
  CHECK(Bytes(frame->data.begin() + 6, frame->data.begin() + 12) == Bytes{2, 0, 0, 0, 0, 9});
  CHECK(frame->data[12] == 0);
  CHECK(frame->data[13] == llc.size());
  CHECK(!pcap.next(stats));
  CHECK(stats.frames == 1);
  CHECK(stats.read_errors == 0);
}

TEST_CASE("raw IP gets the EtherType of its version; other versions are bad frames") {
  Bytes v6(40, 0), bad(20, 0);
  v6[0] = 0x60, bad[0] = 0x50;
  PcapOnDisk file(101, {{1, bad}, {2, v6}});
  PcapFile pcap = open_file(file.path);
  CaptureStats stats;
  auto frame = pcap.next(stats);
  REQUIRE(frame);
  CHECK(frame->data.size() == ETH_HLEN + v6.size());
  CHECK(frame->data[12] == 0x86);
  CHECK(frame->data[13] == 0xdd);
  CHECK(stats.bad_frames == 1);
  CHECK(stats.frames == 2);
}

TEST_CASE("snapped frames are filled to their wire length; longer than a run, cut with their "
          "length") {
  PcapOnDisk file(1, {{1, ethernet_frame(60), 100}, {2, ethernet_frame(5000)}});
  PcapFile pcap = open_file(file.path);
  CaptureStats stats;
  auto padded = pcap.next(stats);
  REQUIRE(padded);
  CHECK(padded->data.size() == 100);
  CHECK(padded->data[99] == 0);
  CHECK(padded->length == 100);
  auto cut = pcap.next(stats);
  REQUIRE(cut);
  CHECK(cut->data.size() == max_run_frame);
  CHECK(cut->length == 5000);
  CHECK(stats.padded_frames == 1);
  CHECK(stats.cut_frames == 1);
}

TEST_CASE("files are merged by time; one that cannot be read is left out with its error") {
  PcapOnDisk a(1, {{1, ethernet_frame(60)}, {4, ethernet_frame(61)}});
  PcapOnDisk b(1, {{2, ethernet_frame(62)}, {3, ethernet_frame(63)}});
  PcapOnDisk null(0, {});
  CaptureSet set({a.path, b.path, null.path, "/nonexistent/capture.pcap"});
  CHECK(set.opened() == 2);
  REQUIRE(set.errors().size() == 2);
  CHECK(set.errors()[0].find("link type NULL") != std::string::npos);
  std::vector<size_t> sizes;
  while (auto frame = set.next())
    sizes.push_back(frame->data.size());
  CHECK(sizes == std::vector<size_t>{60, 62, 63, 61});
  CHECK(set.stats().frames == 4);
}
