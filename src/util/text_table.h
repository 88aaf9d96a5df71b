// Tables for people, as `tcflows report` and the live table print them: a
// header line of column names, columns padded to their widest cell.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tcflows {

struct TextColumn {
  std::string header;
  std::vector<std::string> cells; // one per row
};
using TextTable = std::vector<TextColumn>;

// The table as lines: columns padded to their widest cell (in bytes: cells
// are ASCII but for a last column of bars), one blank between columns, no
// blanks at the end of a line; empty cells at the end of a line are left out.
std::string aligned(const TextTable &table);

// The header of the column showing the record field `name` (as the database
// and JSON name it): "orig_pkts" is ORIG_PKTS, "proto" PROTOCOL, "start_ns"
// START; and of the endpoints "src", "dst" (of a direction) and "orig",
// "resp" (of a connection): SOURCE, DESTINATION, ORIGINATOR, RESPONDER.
std::string column_header(std::string_view name);

} // namespace tcflows
