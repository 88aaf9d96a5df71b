// Random and mutated frames for the parser fuzz test (test_fuzz.cpp).
//
// The generator starts from valid frames of every kind the packet builder
// makes (VLAN and QinQ tags, IPv4 with options and fragments, IPv6 with
// extension header chains and fragments, TCP, UDP, UDP-Lite, SCTP, DCCP,
// ICMP, ICMPv6, GRE and other protocols, ARP, LLDP, STP, CDP, SNAP and other
// EtherTypes) with random addresses and ports, and mutates them: truncations,
// byte flips, bogus length fields, extension-header loops and over-long
// chains, random EtherTypes and VLAN stacks, random bytes. It says what a
// frame must do only where it knows by construction.
#pragma once

#include "harness.h"

#include <cstdint>
#include <deque>
#include <random>
#include <string>
#include <vector>

namespace tcflows::test {

// What a frame must do, known from how it was made.
enum class Must {
  anything,           // mutated: only the invariants apply
  count,              // valid: counted as `expected` says (or untracked when the map is full)
  malformed_ipv4,     // the IPv4 header is invalid
  malformed_ipv6,     // the IPv6 header is invalid
  malformed_ipv6_ext, // more extension headers than the parser follows (8)
};

// How a valid frame must be counted.
struct Expected {
  tcf_flow_key key; // endpoint 0 is the sender; not yet in canonical order
  bool ports_known; // false for later fragments: ports, kind and protocol
                    // may come from their first fragment
  uint64_t bytes;   // IP-level bytes, frame bytes for link-layer frames
  uint32_t hdr_len; // L3 + L4 header bytes every GSO segment repeats
};

// A GSO/GRO super-packet: gso_segs above 1, or gso_size without gso_segs.
inline bool is_super_packet(const RunOpts &opts) {
  return opts.gso_segs > 1 || (opts.gso_segs == 0 && opts.gso_size != 0);
}

struct FuzzFrame {
  Bytes data;
  RunOpts opts;
  std::string how; // what the generator did, for failure messages
  Must must = Must::anything;
  Expected expected{}; // when must == Must::count
};

class Rng {
public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  uint64_t below(uint64_t n) { return n ? gen_() % n : 0; }
  uint64_t range(uint64_t lo, uint64_t hi) { return lo + below(hi - lo + 1); }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(gen_) < p; }
  uint8_t byte() { return uint8_t(gen_()); }
  uint16_t u16() { return uint16_t(gen_()); }
  uint32_t u32() { return uint32_t(gen_()); }
  template <typename T, size_t N> T pick(const T (&items)[N]) { return items[below(N)]; }

private:
  std::mt19937_64 gen_;
};

// The frames of one batch. Addresses, ports and fragment ids come partly from
// small per-batch pools, so that flows repeat, connections split and later
// fragments find their first fragment.
struct Pools {
  std::vector<Mac> macs;
  std::vector<uint32_t> ipv4;
  std::vector<std::array<uint8_t, 16>> ipv6;
  std::vector<uint16_t> ports;
  std::vector<uint16_t> vlans;
};

class FrameGenerator {
public:
  explicit FrameGenerator(uint64_t seed);
  FuzzFrame next();

private:
  FuzzFrame make(RunOpts opts);
  RunOpts next_opts();

  Rng rng_;
  Pools pools_;
  std::deque<FuzzFrame> queued_; // a truncation sweep in progress
  std::deque<FuzzFrame> recent_; // valid frames, sent again now and then
  uint64_t clock_ = 1'000'000'000;
};

// A hex dump of the frame for failure messages, at most `max` bytes of it.
std::string hex(const Bytes &frame, size_t max = 512);

} // namespace tcflows::test
