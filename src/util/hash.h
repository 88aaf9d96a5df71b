// FNV-1a (64 bit): a small hash whose values are the same on every build and
// every machine, for what must not change between runs (connection uids, the
// boot salt) and for hash tables of fixed-layout keys.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace tcflows {

inline constexpr uint64_t fnv1a_offset = 14695981039346656037ull;
inline constexpr uint64_t fnv1a_prime = 1099511628211ull;

// Continues the hash `hash` over `bytes`; start with fnv1a_offset.
constexpr uint64_t fnv1a(std::span<const uint8_t> bytes, uint64_t hash = fnv1a_offset) {
  for (uint8_t byte : bytes)
    hash = (hash ^ byte) * fnv1a_prime;
  return hash;
}

constexpr uint64_t fnv1a(std::string_view text, uint64_t hash = fnv1a_offset) {
  for (char c : text)
    hash = (hash ^ static_cast<uint8_t>(c)) * fnv1a_prime;
  return hash;
}

// The bytes of a value without padding (flow keys, numbers).
template <typename T> std::span<const uint8_t> bytes_of(const T &value) {
  return {reinterpret_cast<const uint8_t *>(&value), sizeof(value)};
}

} // namespace tcflows
