#include "util/timestamp.h"

#include "util/units.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

namespace tcflows {
namespace {

using namespace std::chrono;

// Reads exactly `count` digits.
class Cursor {
public:
  explicit Cursor(std::string_view text) : text_(text) {}

  std::optional<int> digits(size_t count) {
    if (text_.size() < count)
      return std::nullopt;
    int value = 0;
    for (size_t i = 0; i < count; i++) {
      char c = text_[i];
      if (c < '0' || c > '9')
        return std::nullopt;
      value = value * 10 + (c - '0');
    }
    text_.remove_prefix(count);
    return value;
  }
  bool take(char c) {
    if (text_.empty() || text_.front() != c)
      return false;
    text_.remove_prefix(1);
    return true;
  }
  bool take_any(std::string_view chars) {
    if (text_.empty() || chars.find(text_.front()) == std::string_view::npos)
      return false;
    text_.remove_prefix(1);
    return true;
  }
  char peek() const { return text_.empty() ? '\0' : text_.front(); }
  bool done() const { return text_.empty(); }

private:
  std::string_view text_;
};

std::optional<sys_days> read_date(Cursor &in) {
  auto y = in.digits(4);
  // Epoch nanoseconds in an int64_t end in 2262.
  if (!y || *y < 1970 || *y > 2261 || !in.take('-'))
    return std::nullopt;
  auto m = in.digits(2);
  if (!m || !in.take('-'))
    return std::nullopt;
  auto d = in.digits(2);
  if (!d)
    return std::nullopt;
  year_month_day date{year(*y), month(static_cast<unsigned>(*m)), day(static_cast<unsigned>(*d))};
  if (!date.ok())
    return std::nullopt;
  return sys_days(date);
}

// hh:mm[:ss[.fraction]]
std::optional<nanoseconds> read_time_of_day(Cursor &in) {
  auto h = in.digits(2);
  if (!h || *h > 23 || !in.take(':'))
    return std::nullopt;
  auto m = in.digits(2);
  if (!m || *m > 59)
    return std::nullopt;
  nanoseconds time = hours(*h) + minutes(*m);
  if (!in.take(':'))
    return time;
  auto s = in.digits(2);
  if (!s || *s > 59)
    return std::nullopt;
  time += seconds(*s);
  if (!in.take_any(".,"))
    return time;
  int64_t scale = 100'000'000, fraction = 0;
  size_t count = 0;
  for (std::optional<int> digit; (digit = in.digits(1)); count++) {
    fraction += *digit * scale;
    scale /= 10;
  }
  if (count == 0)
    return std::nullopt;
  return time + nanoseconds(fraction);
}

// Z, +hh:mm, +hhmm, +hh (and -): the offset from UTC.
std::optional<minutes> read_zone(Cursor &in) {
  if (in.done())
    return minutes(0);
  if (in.take_any("Zz"))
    return minutes(0);
  char sign = in.peek();
  if (!in.take_any("+-"))
    return std::nullopt;
  auto h = in.digits(2);
  if (!h || *h > 23)
    return std::nullopt;
  int m = 0;
  if (!in.done()) {
    in.take(':');
    auto mm = in.digits(2);
    if (!mm || *mm > 59)
      return std::nullopt;
    m = *mm;
  }
  minutes offset = hours(*h) + minutes(m);
  return sign == '-' ? -offset : offset;
}

} // namespace

std::optional<int64_t> parse_iso8601(std::string_view text) {
  Cursor in(text);
  auto date = read_date(in);
  if (!date)
    return std::nullopt;
  nanoseconds time{0};
  if (!in.done()) {
    if (!in.take_any("Tt "))
      return std::nullopt;
    auto tod = read_time_of_day(in);
    if (!tod)
      return std::nullopt;
    time = *tod;
  }
  auto offset = read_zone(in);
  if (!offset || !in.done())
    return std::nullopt;
  auto utc = sys_time<nanoseconds>(*date) + time - *offset;
  auto ns = utc.time_since_epoch().count();
  if (ns < 0)
    return std::nullopt; // before 1970: nothing tcflows recorded
  return ns;
}

std::optional<int64_t> parse_time_arg(std::string_view text, int64_t now_ns) {
  if (auto duration = parse_duration(text)) {
    if (duration->count() < 0)
      return std::nullopt;
    return std::max<int64_t>(0, now_ns - duration->count());
  }
  return parse_iso8601(text);
}

std::string format_utc(int64_t epoch_ns) {
  auto t = sys_time<nanoseconds>(nanoseconds(epoch_ns));
  auto day = floor<days>(t);
  year_month_day date(day);
  hh_mm_ss tod(floor<milliseconds>(t - day));
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", static_cast<int>(date.year()),
                     static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                     tod.hours().count(), tod.minutes().count(), tod.seconds().count(),
                     tod.subseconds().count());
}

} // namespace tcflows
