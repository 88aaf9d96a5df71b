#include "cli.h"

#include "error.h"
#include "net_address.h"
#include "units.h"

#include <CLI/CLI.hpp>

#include <bit>
#include <cstdlib>

namespace tcflows {
namespace {

void add_duration(CLI::App *app, const std::string &name, std::chrono::nanoseconds &target,
                  const std::string &description) {
  app->add_option_function<std::string>(
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

// --ipfix, --ipfix-active, --metrics (issue 7).
void add_export(CLI::App *record, RecordOptions &o) {
  record
      ->add_option("--ipfix", o.ipfix,
                   "export connection records to an IPFIX collector (repeatable)")
      ->type_name("udp://HOST:PORT|tcp://HOST:PORT")
      ->check(accepted_by(parse_collector_url, "like udp://HOST:PORT or tcp://[IPV6]:PORT"));
  add_duration(record, "--ipfix-active", o.ipfix_active,
               "IPFIX active timeout: open connections are exported as delta records this "
               "often (default 60s)");
  record
      ->add_option("--metrics", o.metrics,
                   "serve Prometheus metrics on http://ADDR:PORT/metrics (a bare PORT listens "
                   "on 127.0.0.1)")
      ->type_name("[ADDR:]PORT")
      ->check(accepted_by(parse_listen_address, "PORT or ADDR:PORT (e.g. 9469, 0.0.0.0:9469)"));
}

void add_record(CLI::App &app, RecordOptions &o) {
  auto *record = app.add_subcommand("record", "count traffic per connection on interfaces");
  record->add_option("-i,--iface", o.ifaces,
                     "interface to watch (repeatable; default: the "
                     "interface of the default route)");
  add_duration(record, "--interval", o.interval, "how often to refresh the table (default 5s)");
  record->add_option("--top", o.top, "rows in the table (default 20)")
      ->check(CLI::Range(size_t{1}, size_t{1} << 30))
      ->each([&o](const std::string &) { o.top_given = true; });
  record->add_option("--format", o.format, "live output: table or json (one snapshot per line)")
      ->transform(CLI::CheckedTransformer(std::map<std::string, LiveFormat>{
          {"table", LiveFormat::table}, {"json", LiveFormat::json}}));
  record->add_flag("-q,--quiet", o.quiet, "print no live output");
  record->add_option("--max-flows", o.max_flows, "flow map entries (default 65536)")
      ->check(CLI::Range(uint32_t{16}, uint32_t{1} << 26));
  record
      ->add_option("--ringbuf-size", o.ringbuf_bytes,
                   "ring buffer bytes, a power of two >= 4096 (default 4 MiB)")
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
  record->add_option("--by", o.by, "live table rows: flow (per direction) or conn")
      ->transform(CLI::CheckedTransformer(
          std::map<std::string, LiveBy>{{"flow", LiveBy::flow}, {"conn", LiveBy::conn}}));
  record
      ->add_option("--jsonl", o.jsonl,
                   "write connection records as JSON lines to PATH, or - for stdout")
      ->type_name("PATH|-");
  add_duration(record, "--tcp-timeout", o.tcp_timeout, "TCP idle timeout (default 5m)");
  add_duration(record, "--udp-timeout", o.udp_timeout, "UDP idle timeout (default 60s)");
  add_duration(record, "--icmp-timeout", o.icmp_timeout, "ICMP idle timeout (default 60s)");
  add_duration(record, "--other-timeout", o.other_timeout,
               "idle timeout of other protocols and link-layer flows (default 60s)");
  record->add_option("--user", o.user,
                     "after attaching, run as this user (keeping only CAP_NET_ADMIN)");
  add_duration(record, "--linger", o.linger,
               "how long a closed TCP connection still takes late packets (default 5s)");
  add_export(record, o);
}

void add_detach(CLI::App &app, DetachOptions &o) {
  auto *detach = app.add_subcommand(
      "detach", "remove what a killed tcflows record left: filters, pins, lock files");
  detach->add_option("-i,--iface", o.ifaces, "only on this interface (repeatable; default: all)");
}

} // namespace

Command parse_command_line(int argc, char **argv) {
  CLI::App app("tcflows: exact per-connection network flow records from eBPF", "tcflows");
  app.require_subcommand(1);
  Command command;
  app.add_flag("-v,--verbose", command.verbose, "debug output, libbpf messages and verifier log");
  RecordOptions record;
  add_record(app, record);
  DetachOptions detach;
  add_detach(app, detach);
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
  if (app.got_subcommand("detach"))
    command.options = detach;
  else
    command.options = record;
  return command;
}

} // namespace tcflows
