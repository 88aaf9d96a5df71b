// IPFIX (RFC 7011) encoding of connection records as biflows (RFC 5103):
// pure code, no sockets. The exporter (ipfix_export.h) sends what this builds.
//
// Why not libfixbuf (Debian libfixbuf-dev 2.4): its network exporters
// (fbExporterAllocNet) own their sockets and write to them blocking, which
// cannot run inside our single-threaded Asio loop. Its buffer exporter
// (fbExporterAllocBuffer) would let us own the sockets, but then what is left
// for the library is two fixed templates and big-endian fields — about the
// size of this file — in exchange for GLib, a process-wide information
// model, C structs whose padding must mirror each template, GError handling
// and one fbSession per collector. A small encoder, tested against
// independent decoders (tshark, nfdump, pmacct), is the simpler dependency.
#pragma once

#include "track/conn.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace tcflows::ipfix {

inline constexpr uint16_t version = 10;
inline constexpr uint16_t template_set_id = 2;
inline constexpr uint16_t template_ipv4 = 256;
inline constexpr uint16_t template_ipv6 = 257;
// RFC 5103: the reverse direction of an IANA element is the same element
// number under this private enterprise number.
inline constexpr uint32_t reverse_pen = 29305;
inline constexpr size_t header_bytes = 16;

// IANA flowEndReason values.
enum class EndReason : uint8_t {
  idle_timeout = 1,
  active_timeout = 2,
  end_of_flow = 3,
  forced_end = 4,
  lack_of_resources = 5,
};

// close_reason → flowEndReason: idle→1, open (a checkpoint)→2, fin/rst→3,
// shutdown and eof→4 (a forced end).
EndReason end_reason(CloseReason close_reason);

// One biflow record: forward = originator to responder.
struct FlowRecord {
  bool ipv6 = false;
  uint8_t src_addr[16] = {}; // network byte order; IPv4 in the first 4 bytes
  uint8_t dst_addr[16] = {};
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  uint8_t proto = 0;
  uint16_t icmp_type_code = 0; // type << 8 | code for ICMP and ICMPv6
  uint64_t start_ms = 0;       // Unix epoch milliseconds
  uint64_t end_ms = 0;
  uint64_t pkts = 0;
  uint64_t bytes = 0;
  uint64_t rev_pkts = 0;
  uint64_t rev_bytes = 0;
  uint8_t tcp_flags = 0;
  uint8_t rev_tcp_flags = 0;
  EndReason end_reason = EndReason::end_of_flow;
  uint8_t biflow_direction = 1; // 1: source is the initiator; 0: arbitrary
  uint16_t vlan = 0;
  uint32_t ifindex = 0;
  std::string iface;
};

// The record of a connection for the traffic in `traffic` (a delta: the
// whole connection or the part since its last export), with the times of
// that traffic; `iface` names the record's interface. nullopt for records
// that are not IP (link-layer flows).
std::optional<FlowRecord> flow_record(const ConnRecord &record, const TrafficDelta &traffic,
                                      EndReason reason, std::string iface);

// A data record in its template's wire layout, without a set header.
struct EncodedRecord {
  uint16_t template_id = 0;
  std::vector<uint8_t> bytes;
};

EncodedRecord encode(const FlowRecord &record);

// The template set announcing both templates.
std::vector<uint8_t> template_set();

struct Message {
  std::vector<uint8_t> bytes;
  uint32_t records = 0; // data records in it
};

// Messages of one transport session (one UDP socket or TCP connection) to
// one collector: sequence numbers count the data records sent before each
// message (RFC 7011 §3.1).
class Session {
public:
  Session(uint32_t domain_id, size_t max_message_bytes);

  // Packs `records` into messages of at most max_message_bytes, in order.
  // With `templates`, the first message starts with the template set.
  std::vector<Message> pack(std::span<const EncodedRecord> records, uint32_t export_time_s,
                            bool templates);

  // A message carrying only the template set.
  Message templates_only(uint32_t export_time_s);

  // A new transport session (TCP reconnect): sequence numbers restart at 0.
  void restart() { sequence_ = 0; }
  uint32_t sequence() const { return sequence_; }

private:
  uint32_t domain_id_;
  size_t max_bytes_;
  uint32_t sequence_ = 0;
};

} // namespace tcflows::ipfix
