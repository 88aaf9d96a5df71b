// `report --chart FILE`: bytes per time bucket of the top keys as a line
// chart, drawn with cairo into an SVG or PNG file (by the file's extension).
#pragma once

#include "report/rows.h"

#include <string>

namespace tcflows {

// Whether the path ends in .svg or .png (any case).
bool is_chart_path(const std::string &path);

// Draws the chart. Throws Fatal (exit 1) when the file cannot be written.
void write_chart(const std::string &path, const ChartData &data);

} // namespace tcflows
