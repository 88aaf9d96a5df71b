#include "sinks/jsonl.h"

#include "track/community_id.h"
#include "track/flow.h"
#include "util/error.h"

#include <fcntl.h>
#include <nlohmann/json.hpp>

namespace tcflows {
namespace {

// The owner of the connection's socket: null keys when there is none, and
// a null cgroup when its path was not found.
void add_process(nlohmann::json &json, const ConnRecord &r) {
  const auto &p = r.process;
  json["pid"] = p ? nlohmann::json(p->pid) : nlohmann::json();
  json["comm"] = p ? nlohmann::json(p->comm()) : nlohmann::json();
  json["cgroup"] = p && !p->cgroup.empty() ? nlohmann::json(p->cgroup) : nlohmann::json();
}

} // namespace

std::string conn_json(const ConnUpdate &update, const InterfaceNames &names) {
  const ConnRecord &r = update.record;
  nlohmann::json json = {
      {"uid", r.uid.view()},
      {"iface", names.name_of(r.ifindex())},
      {"proto", proto_name(r.key)},
      {"src_addr", addr_text(r.key, r.orig)},
      {"src_port", r.src_port},
      {"dst_addr", addr_text(r.key, r.resp())},
      {"dst_port", r.dst_port},
      {"vlan", r.vlan()},
      {"start_ns", r.start_ns},
      {"end_ns", r.end_ns},
      {"orig_pkts", r.orig_pkts},
      {"orig_bytes", r.orig_bytes},
      {"resp_pkts", r.resp_pkts},
      {"resp_bytes", r.resp_bytes},
      {"state", state_name(r.state)},
      {"history", r.history.view()},
      {"close_reason",
       r.final() ? nlohmann::json(close_reason_name(r.close_reason)) : nlohmann::json()},
      {"rtt_ns", r.rtt_ns ? nlohmann::json(*r.rtt_ns) : nlohmann::json()},
      {"orig_guessed", r.orig_guessed},
      {"community_id",
       r.community_id ? nlohmann::json(community_id_text(*r.community_id)) : nlohmann::json()},
      {"checkpoint", !update.final()},
  };
  add_tcp_health(json, r);
  add_process(json, r);
  return json.dump();
}

void add_tcp_health(nlohmann::json &object, const ConnRecord &r) {
  const auto &columns = tcp_health_columns();
  auto values = tcp_health_values(r);
  for (size_t i = 0; i < tcp_health_count; i++)
    object[columns[i]] = values[i] ? nlohmann::json(*values[i]) : nlohmann::json();
}

void JsonlWriter::Close::operator()(std::FILE *file) const { std::fclose(file); }

JsonlWriter::JsonlWriter(const std::string &path) {
  if (path == "-") {
    is_stdout_ = true;
    return;
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  std::FILE *file = fd < 0 ? nullptr : ::fdopen(fd, "a");
  if (!file) {
    if (fd >= 0)
      ::close(fd);
    fail(exit_usage, "cannot open --jsonl file '{}': {}", path, errno_text(errno));
  }
  file_.reset(file);
}

bool JsonlWriter::write(std::span<const ConnUpdate> updates, const InterfaceNames &names) {
  std::FILE *out = is_stdout_ ? stdout : file_.get();
  bool ok = true;
  for (const auto &update : updates) {
    std::string line = conn_json(update, names);
    line += '\n';
    ok = std::fwrite(line.data(), 1, line.size(), out) == line.size() && ok;
  }
  ok = std::fflush(out) == 0 && ok;
  if (!ok)
    errors_++;
  return ok;
}

} // namespace tcflows
