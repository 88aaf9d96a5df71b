// The tracker on the kernel model: packets in, records out. The expected
// records of a test come from the packets it sends (Conversation counts
// them), never from the tracker.
#pragma once

#include "kernel_model.h"
#include "track/tracker.h"

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

namespace model {

// Packets of one connection as the test sends them, and their totals.
class Conversation {
public:
  // Client `c` port `cport` to server `s` port `sport` over TCP (or `proto`).
  Conversation(const char *c, uint16_t cport, const char *s, uint16_t sport, uint8_t proto = 6);

  // A packet from the client (or the server), counted here. Sequence
  // numbers go on from the side's last packet unless `seq` says otherwise;
  // the payload is the bytes past 40 of headers; the ACK number is the
  // peer's next sequence number.
  static constexpr uint32_t next = UINT32_MAX;
  Packet client(uint8_t flags, uint32_t bytes = 40, bool data = false, uint32_t seq = next);
  Packet server(uint8_t flags, uint32_t bytes = 40, bool data = false, uint32_t seq = next);

  // The whole of a short TCP connection: handshake, a request and a reply,
  // FIN both ways; sent on CPU 0, `gap` apart.
  void short_tcp(Kernel &k, uint64_t gap = ms);

  uint64_t pkts[2] = {0, 0}; // client, server
  uint64_t bytes[2] = {0, 0};
  tcf_flow_key key{}; // as sent by the client
  uint32_t next_seq[2] = {1000, 5000};

private:
  Packet count(Packet p, int side);
};

struct Rig {
  explicit Rig(uint32_t slots = 64, tcflows::TrackerConfig config = default_config());
  static tcflows::TrackerConfig default_config();

  // A sweep now (checkpoints too), its records durable at once.
  tcflows::SweepResult sweep(bool checkpoint = true);
  // Time passes, then a sweep.
  tcflows::SweepResult after(uint64_t ns, bool checkpoint = true);

  // Final records handed out so far, and every update.
  std::vector<tcflows::ConnRecord> finals() const;
  // Per uid: the deltas of all its updates summed, checked against its final.
  void check_deltas() const;
  // The one final record with these endpoints (client first); fails unless one.
  tcflows::ConnRecord final_of(const Conversation &c) const;
  std::vector<tcflows::ConnRecord> finals_of(const Conversation &c) const;

  Kernel k;
  Table table{k};
  std::unique_ptr<tcflows::Tracker> tracker;
  std::vector<tcflows::ConnUpdate> updates;
};

// Checks that `r` is the client-to-server connection with these totals.
void check_record(const tcflows::ConnRecord &r, const Conversation &c);

} // namespace model
