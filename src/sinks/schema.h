// The database schema: numbered migrations embedded from schema/*.sql.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace tcflows {

struct Migration {
  int version; // 1, 2, 3, ...: the schema version after applying it
  std::string_view name;
  std::string_view sql;
};

// Every migration in order; the last one's version is the current schema.
std::span<const Migration> migrations();

// PRAGMA application_id of every tcflows database: "tcfl".
inline constexpr int32_t application_id = 0x7463666c;

} // namespace tcflows
