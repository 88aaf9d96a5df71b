// One capture file, pcap or pcapng (read by libpcap), its frames turned into
// the Ethernet frames the TC program parses: Ethernet as it is; Linux cooked
// (SLL, SLL2) and raw IPv4/IPv6 behind a made-up Ethernet header of the
// right EtherType.
#pragma once

#include "capture/frame.h"

#include <memory>
#include <string>
#include <variant>

struct pcap;

namespace tcflows {

class PcapFile {
public:
  // Opens `path` ("-": standard input). The error is one line: why the file
  // cannot be read, or the link type that is not supported.
  static std::variant<PcapFile, std::string> open(const std::string &path);

  // The next frame, valid until the next call (one buffer, reused: no
  // allocation a frame); nullptr at the end of the file or at an error
  // (counted in `stats`, which also counts the frames read, bad, cut and
  // padded).
  const CapturedFrame *next(CaptureStats &stats);
  // The frame the last next() returned.
  const CapturedFrame &frame() const { return frame_; }

  const std::string &path() const { return path_; }

private:
  struct Close {
    void operator()(pcap *p) const;
  };
  PcapFile(std::string path, std::unique_ptr<char[]> buffer, pcap *p, int link_type);

  // The file's stdio buffer: read_buffer bytes, freed after pcap_ closes the file.
  static constexpr size_t read_buffer = 1 << 20;

  std::string path_;
  std::unique_ptr<char[]> buffer_;
  std::unique_ptr<pcap, Close> pcap_;
  int link_type_;
  CapturedFrame frame_;
};

} // namespace tcflows
