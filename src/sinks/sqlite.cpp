#include "sinks/sqlite.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <cctype>

namespace tcflows::sql {
namespace {

bool equal_nocase(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

// file:PATH?immutable=1, PATH percent-encoded where a URI needs it.
std::string immutable_uri(const std::string &path) {
  std::string uri = "file:";
  for (unsigned char c : path)
    uri += std::isalnum(c) || std::string_view("/._-~").find(c) != std::string_view::npos
               ? std::string(1, static_cast<char>(c))
               : fmt::format("%{:02X}", c);
  return uri + "?immutable=1";
}

} // namespace

void Database::Close::operator()(sqlite3 *db) const noexcept { sqlite3_close_v2(db); }

Database Database::open(const std::string &path, Mode mode) {
  int flags =
      mode == Mode::read_write ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY;
  // One connection per thread of ours: no SQLite mutexes needed.
  flags |= SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  std::string name = path;
  if (mode == Mode::immutable) {
    flags |= SQLITE_OPEN_URI;
    name = immutable_uri(path);
  }
  sqlite3 *raw = nullptr;
  int rc = sqlite3_open_v2(name.c_str(), &raw, flags, nullptr);
  Database db;
  db.db_.reset(raw); // closed even when the open failed
  db.path_ = path;
  if (rc != SQLITE_OK)
    db.fail(rc, "cannot open");
  sqlite3_extended_result_codes(raw, 1);
  return db;
}

void Database::fail(int code, std::string_view what) const {
  const char *message = db_ ? sqlite3_errmsg(db_.get()) : sqlite3_errstr(code);
  throw Error(code, fmt::format("{} {}: {}", what, path_, message));
}

void Database::exec(const std::string &sql) {
  int rc = sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK)
    fail(sqlite3_extended_errcode(db_.get()), "cannot write");
}

void Database::set_pragma(std::string_view name, std::string_view value,
                          std::string_view expected) {
  Statement(*this, fmt::format("PRAGMA {} = {}", name, value)).run();
  Statement get(*this, fmt::format("PRAGMA {}", name));
  std::string actual = get.step() ? get.text(0) : "";
  if (!equal_nocase(actual, expected))
    throw Error(SQLITE_ERROR, fmt::format("{}: PRAGMA {} = {} did not take (it reads '{}')", path_,
                                          name, value, actual));
}

int64_t Database::pragma_int(std::string_view name) {
  Statement get(*this, fmt::format("PRAGMA {}", name));
  if (!get.step())
    throw Error(SQLITE_ERROR, fmt::format("{}: PRAGMA {} returned nothing", path_, name));
  return get.int64(0);
}

void Database::persist_wal() {
  int on = 1;
  int rc = sqlite3_file_control(db_.get(), "main", SQLITE_FCNTL_PERSIST_WAL, &on);
  if (rc != SQLITE_OK)
    fail(rc, "cannot keep the WAL of");
}

void Statement::Finalize::operator()(sqlite3_stmt *stmt) const noexcept { sqlite3_finalize(stmt); }

Statement::Statement(Database &db, std::string_view sql) : db_(&db) {
  sqlite3_stmt *raw = nullptr;
  int rc = sqlite3_prepare_v3(db.get(), sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  stmt_.reset(raw);
  if (rc != SQLITE_OK)
    db.fail(sqlite3_extended_errcode(db.get()), "cannot prepare a statement on");
}

Statement &Statement::bind(int index, int64_t value) {
  if (int rc = sqlite3_bind_int64(stmt_.get(), index, value); rc != SQLITE_OK)
    db_->fail(rc, "cannot bind a value on");
  return *this;
}

Statement &Statement::bind(int index, std::string_view value) {
  int rc = sqlite3_bind_text64(stmt_.get(), index, value.data(), value.size(), SQLITE_TRANSIENT,
                               SQLITE_UTF8);
  if (rc != SQLITE_OK)
    db_->fail(rc, "cannot bind a value on");
  return *this;
}

Statement &Statement::bind_ref(int index, std::string_view value) {
  int rc = sqlite3_bind_text64(stmt_.get(), index, value.data(), value.size(), SQLITE_STATIC,
                               SQLITE_UTF8);
  if (rc != SQLITE_OK)
    db_->fail(rc, "cannot bind a value on");
  return *this;
}

Statement &Statement::bind_null(int index) {
  if (int rc = sqlite3_bind_null(stmt_.get(), index); rc != SQLITE_OK)
    db_->fail(rc, "cannot bind a value on");
  return *this;
}

bool Statement::step() {
  int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW)
    return true;
  if (rc == SQLITE_DONE)
    return false;
  db_->fail(sqlite3_extended_errcode(db_->get()), "cannot use");
}

void Statement::run() {
  while (step()) {
  }
}

int Statement::parameter(const char *name) const {
  return sqlite3_bind_parameter_index(stmt_.get(), name);
}

bool Statement::is_text(int column) const {
  return sqlite3_column_type(stmt_.get(), column) == SQLITE_TEXT;
}

bool Statement::is_null(int column) const {
  return sqlite3_column_type(stmt_.get(), column) == SQLITE_NULL;
}

int64_t Statement::int64(int column) const { return sqlite3_column_int64(stmt_.get(), column); }

std::string Statement::text(int column) const {
  const auto *text = sqlite3_column_text(stmt_.get(), column);
  int size = sqlite3_column_bytes(stmt_.get(), column);
  return text ? std::string(reinterpret_cast<const char *>(text), size) : std::string();
}

int Statement::columns() const { return sqlite3_column_count(stmt_.get()); }

std::string Statement::column_name(int column) const {
  const char *name = sqlite3_column_name(stmt_.get(), column);
  return name ? name : "";
}

void Statement::reset() noexcept {
  sqlite3_reset(stmt_.get());
  sqlite3_clear_bindings(stmt_.get());
}

Transaction::Transaction(Database &db) : db_(db) { db_.exec("BEGIN IMMEDIATE"); }

Transaction::~Transaction() {
  if (!done_ && !sqlite3_get_autocommit(db_.get()))
    sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void Transaction::commit() {
  db_.exec("COMMIT");
  done_ = true;
}

} // namespace tcflows::sql
