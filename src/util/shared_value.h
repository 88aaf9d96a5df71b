// An optional value kept behind a shared pointer: a record's field that most
// records leave empty, or that many records hold alike, costs a pointer in
// each record (and in each of its copies) instead of the value's size.
// Immutable once set: copies share it.
#pragma once

#include <memory>
#include <optional>
#include <utility>

namespace tcflows {

template <typename T> class SharedValue {
public:
  SharedValue() = default;
  SharedValue(std::nullopt_t) {}
  SharedValue(T value) : ptr_(std::make_shared<const T>(std::move(value))) {}
  SharedValue(const std::optional<T> &value) {
    if (value)
      ptr_ = std::make_shared<const T>(*value);
  }

  bool has_value() const { return ptr_ != nullptr; }
  explicit operator bool() const { return has_value(); }
  const T &operator*() const { return *ptr_; }
  const T *operator->() const { return ptr_.get(); }
  // Copies that share the value (0 when empty).
  long use_count() const { return ptr_.use_count(); }

  // Equal values, or both empty (not the same allocation).
  friend bool operator==(const SharedValue &a, const SharedValue &b) {
    return a.ptr_ == b.ptr_ || (a.ptr_ && b.ptr_ && *a.ptr_ == *b.ptr_);
  }

private:
  std::shared_ptr<const T> ptr_;
};

} // namespace tcflows
