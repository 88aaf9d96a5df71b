#include "util/text_table.h"

#include <algorithm>
#include <cctype>
#include <utility>

namespace tcflows {

std::string aligned(const TextTable &t) {
  std::vector<size_t> width;
  for (const auto &c : t) {
    size_t w = c.header.size();
    for (const auto &cell : c.cells)
      w = std::max(w, cell.size());
    width.push_back(w);
  }
  std::string out;
  size_t lines = t.empty() ? 0 : t[0].cells.size() + 1;
  for (size_t line = 0; line < lines; line++) {
    auto cell = [&](size_t c) -> const std::string & {
      return line ? t[c].cells[line - 1] : t[c].header;
    };
    size_t end = t.size();
    while (end > 1 && cell(end - 1).empty())
      end--;
    for (size_t c = 0; c < end; c++) {
      out += cell(c);
      if (c + 1 < end)
        out.append(width[c] - cell(c).size() + 1, ' ');
    }
    out += '\n';
  }
  return out;
}

std::string column_header(std::string_view name) {
  static constexpr std::pair<std::string_view, std::string_view> named[] = {
      {"proto", "PROTOCOL"}, {"src", "SOURCE"},     {"dst", "DESTINATION"}, {"orig", "ORIGINATOR"},
      {"resp", "RESPONDER"}, {"start_ns", "START"}, {"end_ns", "END"},
  };
  for (auto [field, header] : named)
    if (field == name)
      return std::string(header);
  std::string header(name);
  std::transform(header.begin(), header.end(), header.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return header;
}

} // namespace tcflows
