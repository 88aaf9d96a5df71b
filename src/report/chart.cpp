#include "report/chart.h"

#include "util/error.h"
#include "util/timestamp.h"
#include "util/units.h"

#include <cairo-svg.h>
#include <cairo.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <memory>

namespace tcflows {
namespace {

constexpr double width = 960, plot_height = 400;
constexpr double left = 90, right = 30, top = 50, legend_line = 20;
constexpr int grid_lines = 4;

// Tableau 10: colors told apart also by most color-blind readers.
constexpr unsigned palette[] = {0x4e79a7, 0xf28e2b, 0xe15759, 0x76b7b2, 0x59a14f,
                                0xedc948, 0xb07aa1, 0xff9da7, 0x9c755f, 0xbab0ac};

std::string extension(const std::string &path) {
  auto dot = path.rfind('.');
  std::string ext = dot == std::string::npos ? "" : path.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  return ext;
}

void set_color(cairo_t *cr, unsigned rgb) {
  cairo_set_source_rgb(cr, (rgb >> 16 & 255) / 255.0, (rgb >> 8 & 255) / 255.0,
                       (rgb & 255) / 255.0);
}

void text_at(cairo_t *cr, double x, double y, const std::string &text, double align = 0) {
  cairo_text_extents_t extents;
  cairo_text_extents(cr, text.c_str(), &extents);
  cairo_move_to(cr, x - extents.x_advance * align, y);
  cairo_show_text(cr, text.c_str());
}

// The step of the y axis' grid_lines: 1, 2 or 5 times a power of ten of
// the byte unit human_bytes prints the largest value in, so that the labels
// are round.
double axis_step(int64_t largest) {
  double unit = 1;
  while (static_cast<double>(largest) / unit >= 1024)
    unit *= 1024;
  double needed = static_cast<double>(largest) / unit / grid_lines;
  for (double power = 0.01;; power *= 10)
    for (double m : {1.0, 2.0, 5.0})
      if (m * power >= needed)
        return std::max(1.0, m * power * unit);
}

std::string width_text(int64_t ns) {
  for (auto [unit, size] : {std::pair{"d", 86'400'000'000'000},
                            {"h", 3'600'000'000'000},
                            {"m", 60'000'000'000},
                            {"s", 1'000'000'000},
                            {"ms", 1'000'000}})
    if (ns % size == 0)
      return fmt::format("{}{}", ns / size, unit);
  return fmt::format("{}ns", ns);
}

// "17:05" within a day, "11-25 17:05" across days; seconds when the
// buckets are shorter than a minute.
std::string time_label(int64_t ns, int64_t span, int64_t bucket) {
  auto utc = format_utc(ns); // 2026-11-25T17:05:00.000Z
  std::string clock = utc.substr(11, bucket < 60'000'000'000 ? 8 : 5);
  return span > 86'400'000'000'000 ? utc.substr(5, 5) + " " + clock : clock;
}

struct Plot {
  const ChartData &data;
  size_t buckets;
  double step; // bytes between grid lines
  double top_value() const { return step * grid_lines; }
  double x(size_t bucket) const {
    double inner = width - left - right;
    return buckets < 2
               ? left + inner / 2
               : left + inner * static_cast<double>(bucket) / static_cast<double>(buckets - 1);
  }
  double y(double bytes) const { return top + plot_height * (1 - bytes / top_value()); }
};

void draw_axes(cairo_t *cr, const Plot &p) {
  cairo_set_line_width(cr, 1);
  cairo_set_font_size(cr, 12);
  for (int i = 0; i <= grid_lines; i++) { // horizontal grid lines with byte labels
    double value = p.step * i;
    set_color(cr, i ? 0xdddddd : 0x555555);
    cairo_move_to(cr, left, p.y(value));
    cairo_line_to(cr, width - right, p.y(value));
    cairo_stroke(cr);
    set_color(cr, 0x333333);
    text_at(cr, left - 8, p.y(value) + 4, human_bytes(static_cast<uint64_t>(value + 0.5)), 1);
  }
  int64_t span = static_cast<int64_t>(p.buckets) * p.data.width_ns;
  size_t step = std::max<size_t>(1, p.buckets / 6);
  for (size_t b = 0; b < p.buckets; b += step) { // time labels under the axis
    int64_t ns = p.data.first_ns + static_cast<int64_t>(b) * p.data.width_ns;
    text_at(cr, p.x(b), top + plot_height + 18, time_label(ns, span, p.data.width_ns), 0.5);
  }
}

void draw_series(cairo_t *cr, const Plot &p) {
  cairo_set_line_width(cr, 2);
  for (size_t s = 0; s < p.data.series.size(); s++) {
    const auto &series = p.data.series[s];
    set_color(cr, palette[s % std::size(palette)]);
    for (size_t b = 0; b < series.bytes.size(); b++)
      (b ? cairo_line_to : cairo_move_to)(cr, p.x(b), p.y(static_cast<double>(series.bytes[b])));
    if (series.bytes.size() == 1)
      cairo_arc(cr, p.x(0), p.y(static_cast<double>(series.bytes[0])), 3, 0, 6.3);
    cairo_stroke(cr);
    double y = top + plot_height + 40 + legend_line * static_cast<double>(s);
    cairo_rectangle(cr, left, y - 10, 12, 12);
    cairo_fill(cr);
    set_color(cr, 0x333333);
    text_at(cr, left + 20, y, series.label);
  }
}

void draw(cairo_t *cr, const ChartData &data, double height) {
  set_color(cr, 0xffffff);
  cairo_rectangle(cr, 0, 0, width, height);
  cairo_fill(cr);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  int64_t largest = 0;
  size_t buckets = 0;
  for (const auto &series : data.series) {
    buckets = std::max(buckets, series.bytes.size());
    for (int64_t bytes : series.bytes)
      largest = std::max(largest, bytes);
  }
  Plot plot{data, buckets, axis_step(std::max<int64_t>(largest, 1))};
  set_color(cr, 0x222222);
  cairo_set_font_size(cr, 15);
  int64_t end = data.first_ns + static_cast<int64_t>(buckets) * data.width_ns;
  text_at(cr, left, 30,
          fmt::format("bytes per {}, {} to {}", width_text(data.width_ns),
                      format_utc(data.first_ns), format_utc(end)));
  draw_axes(cr, plot);
  draw_series(cr, plot);
  if (largest == 0) {
    set_color(cr, 0x888888);
    text_at(cr, width / 2, top + plot_height / 2, "no traffic in this window", 0.5);
  }
}

} // namespace

bool is_chart_path(const std::string &path) {
  auto ext = extension(path);
  return ext == "svg" || ext == "png";
}

void write_chart(const std::string &path, const ChartData &data) {
  double height = top + plot_height + 50 + legend_line * static_cast<double>(data.series.size());
  bool svg = extension(path) == "svg";
  std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)> surface(
      svg ? cairo_svg_surface_create(path.c_str(), width, height)
          : cairo_image_surface_create(CAIRO_FORMAT_RGB24, static_cast<int>(width),
                                       static_cast<int>(height)),
      cairo_surface_destroy);
  std::unique_ptr<cairo_t, decltype(&cairo_destroy)> cr(cairo_create(surface.get()), cairo_destroy);
  draw(cr.get(), data, height);
  auto status = cairo_status(cr.get());
  cr.reset();
  if (status == CAIRO_STATUS_SUCCESS && !svg)
    status = cairo_surface_write_to_png(surface.get(), path.c_str());
  cairo_surface_finish(surface.get()); // an SVG file is written here
  if (status == CAIRO_STATUS_SUCCESS)
    status = cairo_surface_status(surface.get());
  if (status != CAIRO_STATUS_SUCCESS)
    fail(exit_failure, "cannot write the chart {}: {}", path, cairo_status_to_string(status));
}

} // namespace tcflows
