#include "cmd/cli.h"

#include "report/chart.h"
#include "track/flow.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/net_address.h"
#include "util/timestamp.h"
#include "util/units.h"

#include <CLI/CLI.hpp>
#include <arpa/inet.h>
#include <fmt/format.h>
#include <net/if.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>

namespace tcflows {
namespace {

// A positive duration into `target` (std::chrono::nanoseconds or an optional of it).
template <typename Target>
CLI::Option *add_duration(CLI::App *app, const std::string &name, Target &target,
                          const std::string &description) {
  return app
      ->add_option_function<std::string>(
          name,
          [&target, name](const std::string &text) {
            auto duration = parse_duration(text);
            if (!duration || duration->count() <= 0)
              throw CLI::ValidationError(
                  name, "'" + text + "' is not a duration like 250ms, 30s, 15m, 1h, 2d");
            target = *duration;
          },
          description)
      ->type_name("DURATION");
}

// A validator that accepts what `parse` accepts.
template <typename Parse> CLI::Validator accepted_by(Parse parse, const std::string &expected) {
  return CLI::Validator(
      [parse, expected](std::string &text) -> std::string {
        return parse(text) ? std::string() : "'" + text + "' is not " + expected;
      },
      "");
}

// Exports: IPFIX collectors and their active timeout, the Prometheus endpoint.
void add_ipfix(CLI::App *record, RecordOptions &o) {
  record
      ->add_option("--ipfix", o.ipfix,
                   "export connection records to an IPFIX collector (repeatable)")
      ->allow_extra_args(false) // one URL each time: the words after it are read's files
      ->type_name("udp://HOST:PORT|tcp://HOST:PORT")
      ->check(accepted_by(parse_collector_url, "like udp://HOST:PORT or tcp://[IPV6]:PORT"));
  add_duration(record, "--ipfix-active", o.ipfix_active,
               "IPFIX active timeout: open connections are exported as delta records this "
               "often (default 60s)");
}

void add_export(CLI::App *record, RecordOptions &o) {
  add_ipfix(record, o);
  record
      ->add_option("--metrics", o.metrics,
                   "serve Prometheus metrics on http://ADDR:PORT/metrics (a bare PORT listens "
                   "on 127.0.0.1)")
      ->type_name("[ADDR:]PORT")
      ->check(accepted_by(parse_listen_address, "PORT or ADDR:PORT (e.g. 9469, 0.0.0.0:9469)"));
}

CLI::Option *add_time(CLI::App *app, const std::string &name, int64_t now_ns,
                      std::function<void(int64_t)> target, const std::string &description) {
  return app
      ->add_option_function<std::string>(
          name,
          [name, now_ns, target](const std::string &text) {
            auto time = parse_time_arg(text, now_ns);
            if (!time)
              throw CLI::ValidationError(name, "'" + text +
                                                   "' is not a duration like 15m, 1h, 2d or an "
                                                   "ISO 8601 time like 2026-11-25T17:00:00Z");
            target(*time);
          },
          description)
      ->type_name("TIME");
}

// An option taking one of a few words.
template <typename T>
void add_choice(CLI::App *app, const std::string &name, T &target,
                std::vector<std::pair<std::string, T>> choices, const std::string &description) {
  std::string names;
  for (const auto &choice : choices)
    names += (names.empty() ? "" : ", ") + choice.first;
  app->add_option_function<std::string>(
         name,
         [&target, name, choices, names](const std::string &text) {
           for (const auto &[word, value] : choices)
             if (word == text) {
               target = value;
               return;
             }
           throw CLI::ValidationError(name, "'" + text + "' is not one of " + names);
         },
         description)
      ->type_name("WORD");
}

// --proto, --host, --port, --iface, --community-id, --pid, --comm: each the
// filter primitive of its name.
void add_report_filters(CLI::App *report, ReportOptions &o) {
  struct Shortcut {
    std::string option, field, type, description;
  };
  for (const auto &s : std::vector<Shortcut>{
           {"--proto", "proto", "P", "only this protocol (TCP, UDP, ICMP, 47, ARP, ...)"},
           {"--host", "host", "ADDR", "only connections with this endpoint address"},
           {"--port", "port", "N", "only connections with this port at either end"},
           {"--iface", "iface", "IF", "only connections seen on this interface"},
           {"--community-id", "community-id", "ID", "only the connection of this Community ID"},
           {"--pid", "pid", "N", "only connections whose socket this process owned"},
           {"--comm", "comm", "NAME",
            "only connections whose socket a process of this name owned"}})
    report
        ->add_option_function<std::string>(
            s.option,
            [&o, s](const std::string &text) {
              auto primitive = Filter::primitive(s.field, text);
              if (auto *error = std::get_if<FilterError>(&primitive))
                throw CLI::ValidationError(s.option, "'" + text + "': " + error->message);
              o.filter = o.filter && std::get<Filter>(primitive);
            },
            s.description)
        ->type_name(s.type);
}

// The filter expression: -f EXPR, or the words after the options (joined
// with blanks, as tcpdump takes them).
struct FilterText {
  std::string option;
  std::vector<std::string> words;
};

void add_report_expression(CLI::App *report, FilterText &f) {
  report->add_option("-f,--filter", f.option, "only connections the filter admits (see below)")
      ->type_name("EXPR");
  report->add_option("expression", f.words, "the filter, as tcpdump takes it (see below)")
      ->type_name("EXPR");
}

// --every, --chart.
void add_report_buckets(CLI::App *report, ReportOptions &o) {
  add_duration(report, "--every", o.every,
               "one row per time bucket of this width (and per --by key, --top of them)");
  report
      ->add_option_function<std::string>(
          "--chart",
          [&o](const std::string &text) {
            if (!is_chart_path(text))
              throw CLI::ValidationError("--chart", "'" + text + "' ends neither in .svg nor .png");
            o.chart = text;
          },
          "draw bytes per bucket of the top keys (--top, default 5) into FILE.svg or FILE.png")
      ->type_name("FILE");
}

// Returns the --since option, whose default depends on --until.
CLI::Option *add_report(CLI::App &app, ReportOptions &o, FilterText &filter, int64_t now_ns) {
  auto *report = app.add_subcommand("report", "totals and connections from the database");
  report->add_option("--db", o.db, "the database (default ./tcflows.db)")->type_name("PATH");
  auto *since = add_time(
      report, "--since", now_ns, [&o](int64_t t) { o.since_ns = t; },
      "from this time, or this long ago (default: 1h before --until)");
  add_time(
      report, "--until", now_ns, [&o](int64_t t) { o.until_ns = t; },
      "up to this time, or this long ago (default: now)");
  add_choice<ReportBy>(report, "--by", o.by,
                       {{"flow", ReportBy::flow},
                        {"conn", ReportBy::conn},
                        {"host", ReportBy::host},
                        {"port", ReportBy::port},
                        {"proto", ReportBy::proto},
                        {"total", ReportBy::total},
                        {"process", ReportBy::process}},
                       "flow (default; total with --every), conn, host, port, proto, total or "
                       "process");
  add_report_filters(report, o);
  add_report_expression(report, filter);
  add_report_buckets(report, o);
  report->add_option("--top", o.top, "at most this many rows (default: all)")
      ->check(CLI::Range(size_t{1}, size_t{1} << 40))
      ->type_name("N");
  add_choice<ReportSort>(report, "--sort", o.sort,
                         {{"bytes", ReportSort::bytes},
                          {"packets", ReportSort::packets},
                          {"start", ReportSort::start},
                          {"duration", ReportSort::duration},
                          {"retx", ReportSort::retx},
                          {"rtt", ReportSort::rtt}},
                         "bytes (default), packets; with --by conn also start, duration, retx "
                         "(TCP retransmissions) or rtt (the larger side's mean round trip)");
  add_choice<ReportFormat>(
      report, "--format", o.format,
      {{"table", ReportFormat::table}, {"json", ReportFormat::json}, {"csv", ReportFormat::csv}},
      "table (default), json or csv");
  report->footer(filter_help());
  return since;
}

// The expression, parsed, joined to what --host, --port, ... give.
void add_expression(ReportOptions &o, const FilterText &f) {
  if (!f.option.empty() && !f.words.empty())
    fail(exit_usage, "the filter is given twice, with -f and after the options; give one");
  std::string text = f.option;
  for (const auto &word : f.words)
    text += (text.empty() ? "" : " ") + word;
  auto parsed = Filter::parse(text);
  if (auto *error = std::get_if<FilterError>(&parsed))
    fail(exit_usage, "filter: {} (see `tcflows report --help`)", error->text());
  o.filter = std::get<Filter>(parsed) && o.filter;
}

// What the options cannot check one by one.
void check_report(const ReportOptions &o) {
  if (o.until_ns && o.since_ns > *o.until_ns)
    fail(exit_usage, "--since {} is after --until {}", format_utc(o.since_ns),
         format_utc(*o.until_ns));
  bool per_conn = o.sort != ReportSort::bytes && o.sort != ReportSort::packets;
  if (per_conn && o.by != ReportBy::conn)
    fail(exit_usage, "--sort start, duration, retx and rtt go with --by conn");
  if (o.every && o.by == ReportBy::conn)
    fail(exit_usage, "--every counts traffic per bucket; it does not go with --by conn");
  if (o.chart && !o.every)
    fail(exit_usage, "--chart draws time buckets: give their width with --every");
  if (o.top && o.by == ReportBy::total)
    fail(exit_usage, "--top keeps the largest keys; --by total has one row per bucket");
}

// The database: where, how long records are kept, or none.
void add_record_store(CLI::App *record, RecordOptions &o) {
  auto *db = record->add_option("--db", o.db, "the database to write (default ./tcflows.db)")
                 ->type_name("PATH");
  auto *retention = add_duration(record, "--retention", o.retention,
                                 "delete records older than this (default: keep everything)");
  record->add_flag("--no-db", o.no_db, "write no database")->excludes(db)->excludes(retention);
}

// Connection records: JSON lines, when a connection ends (timeouts, linger),
// their Community ID.
void add_record_lifecycle(CLI::App *record, RecordOptions &o) {
  record
      ->add_option("--jsonl", o.jsonl,
                   "write connection records as JSON lines to PATH, or - for stdout")
      ->type_name("PATH|-");
  add_duration(record, "--tcp-timeout", o.tcp_timeout, "TCP idle timeout (default 5m)");
  add_duration(record, "--udp-timeout", o.udp_timeout, "UDP idle timeout (default 60s)");
  add_duration(record, "--icmp-timeout", o.icmp_timeout, "ICMP idle timeout (default 60s)");
  add_duration(record, "--other-timeout", o.other_timeout,
               "idle timeout of other protocols and link-layer flows (default 60s)");
  add_duration(record, "--linger", o.linger,
               "how long a closed TCP connection still takes late packets (default 5s)");
  record
      ->add_option("--community-id-seed", o.community_id_seed,
                   "the seed of the records' Community ID, 0 to 65535 (default 0)")
      ->type_name("N");
}

// The BPF side: table sizes, TC priority.
void add_record_kernel(CLI::App *record, RecordOptions &o) {
  record
      ->add_option("--max-flows", o.max_flows,
                   "live connections the kernel's table holds; half as many again hold "
                   "connections whose records are being written (default 65536)")
      ->check(CLI::Range(uint32_t{16}, uint32_t{1} << 26));
  record
      ->add_option("--ringbuf-size", o.ringbuf_bytes,
                   "bytes of the ring buffer that wakes the agent when free slots run low, "
                   "a power of two >= 4096 (default 16 KiB)")
      ->check(CLI::Validator(
          [](std::string &text) -> std::string {
            unsigned long long value = std::strtoull(text.c_str(), nullptr, 10);
            if (value < 4096 || value > (1ull << 30) || !std::has_single_bit(value))
              return "must be a power of two between 4096 and 1073741824";
            return {};
          },
          "POW2"));
  record->add_option("--tc-priority", o.tc_priority, "TC filter priority (default 1)")
      ->check(CLI::Range(uint32_t{1}, uint32_t{0xffff}));
  record->add_flag("--no-process", o.no_process,
                   "attach no socket tracing programs: records without pid, comm and cgroup");
}

void add_record(CLI::App &app, RecordOptions &o) {
  auto *record = app.add_subcommand("record", "count traffic per connection on interfaces");
  record->add_option("-i,--iface", o.ifaces,
                     "interface to watch (repeatable; default: the interface of the default "
                     "route)");
  add_duration(record, "--interval", o.interval,
               "how often to write records and refresh the table (default 5s)");
  record->add_option("--top", o.top, "rows in the table (default 20)")
      ->check(CLI::Range(size_t{1}, size_t{1} << 30))
      ->each([&o](const std::string &) { o.top_given = true; });
  add_choice<LiveFormat>(record, "--format", o.format,
                         {{"table", LiveFormat::table}, {"json", LiveFormat::json}},
                         "live output: table or json (one snapshot per line)");
  add_choice<LiveBy>(record, "--by", o.by, {{"flow", LiveBy::flow}, {"conn", LiveBy::conn}},
                     "live table rows: flow (one per direction) or conn");
  record->add_flag("-q,--quiet", o.quiet, "print no live output");
  record->add_option("--user", o.user,
                     "after attaching, run as this user (keeping only CAP_NET_ADMIN)");
  add_record_kernel(record, o);
  add_record_lifecycle(record, o);
  add_record_store(record, o);
  add_export(record, o);
}

// `read`: the options of `record` that mean something offline, in capture time.
void add_read(CLI::App &app, ReadOptions &o) {
  auto *read = app.add_subcommand(
      "read", "count the connections of capture files (pcap, pcapng) as record would");
  read->add_option("files", o.files, "capture files, read as one capture in time order; - is stdin")
      ->required()
      ->type_name("FILE...");
  add_duration(read, "--interval", o.record.interval,
               "how often, in capture time, open connections are checkpointed (default 5s)");
  read->add_option("--max-flows", o.record.max_flows,
                   "live connections the kernel's table holds (default 65536)")
      ->check(CLI::Range(uint32_t{16}, uint32_t{1} << 26));
  read->add_flag("-q,--quiet", o.record.quiet, "print no summary at the end");
  add_record_lifecycle(read, o.record);
  // No --retention: it counts back from now, and a capture's records are older.
  auto *db = read->add_option("--db", o.record.db, "the database to write (default ./tcflows.db)")
                 ->type_name("PATH");
  read->add_flag("--no-db", o.record.no_db, "write no database")->excludes(db);
  add_ipfix(read, o.record);
}

void add_detach(CLI::App &app, DetachOptions &o) {
  auto *detach = app.add_subcommand(
      "detach", "remove what a killed tcflows record left: filters and lock files");
  detach->add_option("-i,--iface", o.ifaces, "only on this interface (repeatable; default: all)");
}

} // namespace

Command parse_command_line(int argc, char **argv) {
  CLI::App app("tcflows: exact per-connection network flow records from eBPF", "tcflows");
  app.require_subcommand(1);
  app.set_version_flag("--version", "tcflows " TCFLOWS_VERSION);
  Command command;
  app.add_flag("-v,--verbose", command.verbose, "debug output, libbpf messages and verifier log");
  RecordOptions record;
  add_record(app, record);
  ReadOptions read;
  add_read(app, read);
  DetachOptions detach;
  add_detach(app, detach);
  auto now_ns = static_cast<int64_t>(epoch_now_ns());
  ReportOptions report;
  FilterText filter;
  auto *since = add_report(app, report, filter, now_ns);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp &) {
    std::exit(app.exit(CLI::CallForHelp()));
  } catch (const CLI::ParseError &e) {
    if (e.get_exit_code() == 0)
      std::exit(app.exit(e));
    std::string sub =
        app.get_subcommands().empty() ? "" : app.get_subcommands()[0]->get_name() + " ";
    fail(exit_usage, "{} (see `tcflows {}--help`)", e.what(), sub);
  }
  if (app.got_subcommand("report")) {
    if (since->count() == 0) // the hour before --until, or the last hour
      report.since_ns = report.until_ns.value_or(now_ns) -
                        std::chrono::nanoseconds(std::chrono::hours(1)).count();
    report.now_ns = now_ns;
    if (report.every && app.get_subcommand("report")->get_option("--by")->count() == 0)
      report.by = ReportBy::total;
    add_expression(report, filter);
    check_report(report);
    command.options = report;
  } else if (app.got_subcommand("read")) {
    command.options = read;
  } else if (app.got_subcommand("detach")) {
    command.options = detach;
  } else {
    command.options = record;
  }
  return command;
}

} // namespace tcflows
