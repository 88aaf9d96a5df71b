// What a frame's raw bytes can mean, read the way the standards lay headers
// out, independently of the program: Ethernet, up to two VLAN tags, then an
// IPv4 header (IHL), an IPv6 header and any extension header chain, an
// 802.2 LLC/SNAP header, or another EtherType. The fuzz test accepts a flow
// key from the program only if one of these readings of the frame gives it:
// no address, port, VLAN id or protocol may come from anywhere else.
#pragma once

#include "harness.h"

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace tcflows::test {

// Transport readings: (protocol, kind, sender's port, receiver's port).
using L4Reading = std::tuple<uint8_t, uint8_t, uint16_t, uint16_t>;
using L4Readings = std::set<L4Reading>;

// Adds every transport reading of the frame (all tag counts, every position
// of an IPv6 extension chain) to `out`: later fragments take the ports of an
// earlier frame of the batch.
void add_l4_readings(const Bytes &frame, L4Readings &out);

// The offsets of the network headers (after 0, 1 or 2 tags) under which the
// frame gives `key` for a packet in direction `dir`; `batch` holds the
// transport readings of the batch's frames so far. Empty: no reading gives it.
std::vector<size_t> readings_of_key(const Bytes &frame, const tcf_flow_key &key, int dir,
                                    const L4Readings &batch);

// Whether `bytes` are the wire bytes of the frame read with its network
// header at `l3`: the IP length field (or what the frame holds, with every
// GSO segment after the first repeating at most that many header bytes), or
// the frame length for link-layer flows.
bool bytes_fit(const Bytes &frame, const tcf_flow_key &key, size_t l3, uint32_t wire_packets,
               uint64_t bytes);

// The malformed-frame counter a frame must bump because a header the
// parser must read is invalid by the standards: a truncated VLAN tag within
// the first two, or an IPv4/IPv6 header that is cut, has the wrong version,
// an IHL below 5, or a length field beyond the frame or below the header
// (length fields do not bind a GSO super-packet). Nothing when those
// headers are valid.
std::optional<tcf_counter> invalid_header(const Bytes &frame, bool gso);

} // namespace tcflows::test
