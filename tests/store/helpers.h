// Shared by the store tests: temporary directories, records to write, and
// plain SQLite access that does not go through the code under test.
#pragma once

#include "kernel/counters.h"
#include "sinks/store.h"
#include "text_record.h"
#include "track/conn.h"

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace tcflows::test {

// A fresh directory under /tmp, removed with everything in it at the end.
class TempDir {
public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;
  const std::string &path() const { return path_; }
  std::string file(const std::string &name) const { return path_ + "/" + name; }

private:
  std::string path_;
};

// A TCP connection record with every field set, `uid` and times as given.
TextRecord make_record(const std::string &uid, uint64_t start_ns, uint64_t end_ns);

// An update with the record and the delta [from_ns, to_ns).
ConnUpdate make_update(const TextRecord &record, uint64_t from_ns, uint64_t to_ns,
                       uint64_t orig_pkts, uint64_t orig_bytes, uint64_t resp_pkts,
                       uint64_t resp_bytes);

// The store, writing with the names of the interfaces the test's records use.
class TestStore : public Store {
public:
  using Store::Store;
  bool write(std::vector<ConnUpdate> updates, const Counters &counters, uint64_t now_ns) {
    set_interfaces(interfaces());
    return Store::write(std::move(updates), counters, now_ns);
  }
};

Counters counters_with(uint64_t value);

// The store's defaults with this path.
StoreConfig store_config(const std::string &path);

// Direct sqlite3 C API access for checks.
class RawDb {
public:
  // Opens read-write (creating a missing file) or read-only.
  explicit RawDb(const std::string &path, bool read_only = false);
  ~RawDb();
  RawDb(const RawDb &) = delete;
  RawDb &operator=(const RawDb &) = delete;
  // Returns the SQLite result code; fails the test only where it checks it.
  int exec(const std::string &sql);
  int64_t integer(const std::string &sql);
  std::optional<std::string> text(const std::string &sql);
  // Every row of a query as text cells (NULL as "NULL").
  std::vector<std::vector<std::string>> rows(const std::string &sql);

private:
  sqlite3 *db_ = nullptr;
};

std::string read_file(const std::string &path);
void write_file(const std::string &path, const std::string &data);
struct stat stat_of(const std::string &path);
bool exists(const std::string &path);

} // namespace tcflows::test
