#include "helpers.h"

#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace tcflows::test {

TempDir::TempDir() {
  char pattern[] = "/tmp/ts-store-XXXXXX";
  if (!mkdtemp(pattern))
    throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

TextRecord make_record(const std::string &uid, uint64_t start_ns, uint64_t end_ns) {
  TextRecord r;
  r.uid = uid;
  r.iface = "eth0";
  r.proto = "TCP";
  r.src_addr = "10.0.2.15";
  r.src_port = 41234;
  r.dst_addr = "192.0.2.1";
  r.dst_port = 443;
  r.vlan = 7;
  r.start_ns = start_ns;
  r.end_ns = end_ns;
  r.state = "S1";
  r.history = "ShAD";
  r.rtt_ns = 1'250'000;
  r.orig_guessed = true;
  return r;
}

ConnUpdate make_update(const TextRecord &record, uint64_t from_ns, uint64_t to_ns,
                       uint64_t orig_pkts, uint64_t orig_bytes, uint64_t resp_pkts,
                       uint64_t resp_bytes) {
  return update_of(record, {from_ns, to_ns, orig_pkts, orig_bytes, resp_pkts, resp_bytes});
}

Counters counters_with(uint64_t value) {
  Counters c{};
  for (size_t i = 0; i < c.size(); i++)
    c[i] = value + i;
  return c;
}

StoreConfig store_config(const std::string &path) {
  StoreConfig config;
  config.path = path;
  return config;
}

RawDb::RawDb(const std::string &path, bool read_only) {
  int flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK)
    throw std::runtime_error("cannot open " + path + ": " + sqlite3_errmsg(db_));
  sqlite3_busy_timeout(db_, 5000);
}

RawDb::~RawDb() { sqlite3_close(db_); }

int RawDb::exec(const std::string &sql) {
  return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
}

std::vector<std::vector<std::string>> RawDb::rows(const std::string &sql) {
  sqlite3_stmt *stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK)
    throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
  std::vector<std::vector<std::string>> out;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    auto &row = out.emplace_back();
    for (int i = 0; i < sqlite3_column_count(stmt); i++) {
      const auto *t = sqlite3_column_text(stmt, i);
      row.push_back(t ? reinterpret_cast<const char *>(t) : "NULL");
    }
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE)
    throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
  return out;
}

int64_t RawDb::integer(const std::string &sql) {
  auto result = rows(sql);
  if (result.size() != 1 || result[0].size() != 1)
    throw std::runtime_error(sql + ": not one value");
  return std::stoll(result[0][0] == "NULL" ? "0" : result[0][0]);
}

std::optional<std::string> RawDb::text(const std::string &sql) {
  auto result = rows(sql);
  if (result.empty() || result[0][0] == "NULL")
    return std::nullopt;
  return result[0][0];
}

std::string read_file(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_file(const std::string &path, const std::string &data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

struct stat stat_of(const std::string &path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw std::runtime_error("stat " + path);
  return st;
}

bool exists(const std::string &path) { return std::filesystem::exists(path); }

} // namespace tcflows::test
