// RAII owners for SQLite: a database connection, prepared statements and
// transactions. Every failed call throws sql::Error with SQLite's message and
// extended result code; the store turns it into a counted, retried failure,
// `report` into a one-line error. Values reach SQL only as bound parameters.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace tcflows::sql {

class Error : public std::runtime_error {
public:
  Error(int code, const std::string &message) : std::runtime_error(message), code_(code) {}
  int code() const { return code_; }           // extended result code
  int primary() const { return code_ & 0xff; } // SQLITE_BUSY, SQLITE_FULL, ...

private:
  int code_;
};

class Database {
public:
  // immutable: read-only without locks or a WAL index, for a database that
  // nothing writes (it has no -wal file) in a directory we cannot write.
  enum class Mode { read_only, immutable, read_write };

  // Opens an existing database file (read_write also creates a missing one).
  static Database open(const std::string &path, Mode mode);

  sqlite3 *get() const { return db_.get(); }
  const std::string &path() const { return path_; }

  // Runs SQL that has no parameters: migrations and transaction control.
  void exec(const std::string &sql);

  // Sets a pragma, then reads it back and throws unless it reads `expected`
  // (compared case-insensitively). Names and values are our constants.
  void set_pragma(std::string_view name, std::string_view value, std::string_view expected);
  int64_t pragma_int(std::string_view name);

  // Keeps the -wal and -shm files after the last connection closes, so that
  // readers without write access to the directory can still open the database.
  void persist_wal();

  // Throws Error with the connection's current message, prefixed by `what`.
  [[noreturn]] void fail(int code, std::string_view what) const;

private:
  struct Close {
    void operator()(sqlite3 *db) const noexcept;
  };
  std::unique_ptr<sqlite3, Close> db_;
  std::string path_;
};

// A statement prepared once and run many times: bind, step, then reset()
// (ResetGuard does it however the scope ends).
class Statement {
public:
  Statement(Database &db, std::string_view sql);

  Statement &bind(int index, int64_t value);
  Statement &bind(int index, std::string_view value);
  // Binds without a copy: `value` must stay unchanged until reset().
  Statement &bind_ref(int index, std::string_view value);
  Statement &bind_null(int index);
  template <typename T> Statement &bind(int index, const std::optional<T> &value) {
    return value ? bind(index, *value) : bind_null(index);
  }

  // True when a row is ready, false when the statement is done.
  bool step();
  // Steps to the end; for statements that return no rows.
  void run();

  // The index of a named parameter (":since"), 0 when the statement has none.
  int parameter(const char *name) const;

  bool is_null(int column) const;
  bool is_text(int column) const;
  int64_t int64(int column) const;
  std::string text(int column) const;
  int columns() const;
  std::string column_name(int column) const;

  // Resets the statement and clears its bindings; never fails.
  void reset() noexcept;

private:
  struct Finalize {
    void operator()(sqlite3_stmt *stmt) const noexcept;
  };
  Database *db_;
  std::unique_ptr<sqlite3_stmt, Finalize> stmt_;
};

class ResetGuard {
public:
  explicit ResetGuard(Statement &statement) : statement_(statement) {}
  ~ResetGuard() { statement_.reset(); }
  ResetGuard(const ResetGuard &) = delete;
  ResetGuard &operator=(const ResetGuard &) = delete;

private:
  Statement &statement_;
};

// BEGIN IMMEDIATE (takes the write lock now, so a busy database fails here
// rather than halfway); rolled back on destruction unless committed.
class Transaction {
public:
  explicit Transaction(Database &db);
  ~Transaction();
  Transaction(const Transaction &) = delete;
  Transaction &operator=(const Transaction &) = delete;

  void commit();

private:
  Database &db_;
  bool done_ = false;
};

} // namespace tcflows::sql
