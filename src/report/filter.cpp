#include "report/filter.h"

#include "report/filter_values.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

namespace tcflows {

// A filter is a tree: all (and), any (or), negate (not), or a test of one
// field.
struct FilterNode {
  enum class Op { all, any, negate, test };
  Op op = Op::test;
  std::vector<FilterNode> children;
  FilterTest test;
};

namespace {

// The fields of the grammar, one line each. `value` is the field without
// src/dst (empty: src or dst, either one); `src` and `dst` with them (empty:
// the field has no sides); `guard` a condition the value needs to mean
// anything (ports only of port protocols, a measured rtt, a closed
// connection's reason), so that every test is true or false, never NULL.
// Columns in the hour indexes are `indexed`.
const std::string port_guard = [] {
  std::string list;
  for (auto proto : port_protocols)
    list += fmt::format("{}'{}'", list.empty() ? "" : ", ", proto);
  return "c.proto IN (" + list + ")";
}();
const FilterField fields[] = {
    {"host", ValueKind::address, {}, "c.src_addr", "c.dst_addr", {}, true},
    {"net", ValueKind::network, {}, "c.src_addr", "c.dst_addr", {}, true},
    {"port", ValueKind::port, {}, "c.src_port", "c.dst_port", port_guard},
    {"portrange", ValueKind::port_range, {}, "c.src_port", "c.dst_port", port_guard},
    {"proto", ValueKind::protocol, "c.proto"},
    {"iface", ValueKind::iface, "c.iface"},
    {"vlan", ValueKind::count, "c.vlan"},
    {"state", ValueKind::conn_state, "c.state"},
    {"close", ValueKind::close_reason, "c.close_reason", {}, {}, "c.close_reason IS NOT NULL"},
    {"bytes", ValueKind::bytes, "c.orig_bytes + c.resp_bytes", "c.orig_bytes", "c.resp_bytes"},
    {"packets", ValueKind::count, "c.orig_pkts + c.resp_pkts", "c.orig_pkts", "c.resp_pkts"},
    {"duration", ValueKind::duration, "c.end_ns - c.start_ns"},
    {"rtt", ValueKind::duration, "c.rtt_ns", {}, {}, "c.rtt_ns IS NOT NULL"},
    {"uid", ValueKind::text, "c.uid"},
    {"community-id", ValueKind::text, "c.community_id", {}, {}, "c.community_id IS NOT NULL"},
    {"retx", ValueKind::count, "c.orig_retx_pkts + c.resp_retx_pkts", "c.orig_retx_pkts",
     "c.resp_retx_pkts", "c.orig_retx_pkts IS NOT NULL"},
    {"ooo", ValueKind::count, "c.orig_ooo_pkts + c.resp_ooo_pkts", "c.orig_ooo_pkts",
     "c.resp_ooo_pkts", "c.orig_ooo_pkts IS NOT NULL"},
    {"zero-windows", ValueKind::count, "c.orig_zero_windows + c.resp_zero_windows",
     "c.orig_zero_windows", "c.resp_zero_windows", "c.orig_zero_windows IS NOT NULL"},
    {"pid", ValueKind::count, "c.pid", {}, {}, "c.pid IS NOT NULL"},
    {"comm", ValueKind::text, "c.comm", {}, {}, "c.comm IS NOT NULL"},
};

// Protocol words that stand alone ("tcp") or qualify the primitive after
// them ("tcp port 80"); ip4 and ip6 select the address family.
struct ProtoWord {
  std::string_view word;
  std::string_view proto; // the stored name; empty for ip4 and ip6
  std::string_view net;   // ip4, ip6: the network of every address of the family
};
constexpr ProtoWord proto_words[] = {
    {"tcp", "TCP", {}},   {"udp", "UDP", {}}, {"icmp", "ICMP", {}},     {"icmp6", "ICMPv6", {}},
    {"sctp", "SCTP", {}}, {"arp", "ARP", {}}, {"ip4", {}, "0.0.0.0/0"}, {"ip6", {}, "::/0"},
};

// Comparisons: as typed, and as SQL.
struct Comparison {
  std::string_view typed, sql;
};
constexpr Comparison comparisons[] = {
    {">", ">"},  {">=", ">="}, {"<", "<"},  {"<=", "<="}, {"=", "="},  {"==", "="},  {"!=", "!="},
    {"gt", ">"}, {"ge", ">="}, {"lt", "<"}, {"le", "<="}, {"eq", "="}, {"ne", "!="},
};

const FilterField *find_field(std::string_view name) {
  for (const auto &field : fields)
    if (field.name == name)
      return &field;
  return nullptr;
}

const ProtoWord *find_proto_word(std::string_view word) {
  for (const auto &p : proto_words)
    if (p.word == word)
      return &p;
  return nullptr;
}

const Comparison *find_comparison(std::string_view typed) {
  for (const auto &c : comparisons)
    if (c.typed == typed)
      return &c;
  return nullptr;
}

struct Token {
  enum class Type { word, op, open, close, end };
  Type type = Type::end;
  std::string_view text;
  size_t column = 0; // 1-based
};

bool is_op_char(char c) { return c == '<' || c == '>' || c == '=' || c == '!'; }
bool is_bool_char(char c) { return c == '&' || c == '|'; }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Words, comparison operators (runs of < > = !), && and ||, parentheses.
std::vector<Token> tokens_of(std::string_view text) {
  std::vector<Token> tokens;
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (is_space(c)) {
      i++;
      continue;
    }
    size_t start = i;
    Token::Type type = Token::Type::word;
    if (c == '(' || c == ')') {
      type = c == '(' ? Token::Type::open : Token::Type::close;
      i++;
    } else if (is_op_char(c) || is_bool_char(c)) {
      type = Token::Type::op;
      while (i < text.size() && i - start < 2 &&
             (is_op_char(c) ? is_op_char(text[i]) : text[i] == c))
        i++;
    } else {
      while (i < text.size() && !is_space(text[i]) && text[i] != '(' && text[i] != ')' &&
             !is_op_char(text[i]) && !is_bool_char(text[i]))
        i++;
      // A Community ID ("1:" and base64) keeps the '=' that pads its end.
      if (text.substr(start, 2) == "1:")
        while (i < text.size() && text[i] == '=')
          i++;
    }
    tokens.push_back({type, text.substr(start, i - start), start + 1});
  }
  tokens.push_back({Token::Type::end, {}, text.size() + 1});
  return tokens;
}

bool is_and(const Token &t) { return t.text == "and" || t.text == "&&"; }
bool is_or(const Token &t) { return t.text == "or" || t.text == "||"; }
bool is_not(const Token &t) { return t.text == "not" || t.text == "!"; }
bool is_side(const Token &t) { return t.text == "src" || t.text == "dst"; }

std::string field_names() {
  std::string names;
  for (const auto &field : fields)
    names += (names.empty() ? "" : ", ") + std::string(field.name);
  return names;
}

FilterNode combine(FilterNode::Op op, std::vector<FilterNode> children) {
  if (children.size() == 1)
    return std::move(children[0]);
  FilterNode node;
  node.op = op;
  node.children = std::move(children);
  return node;
}

// Recursive descent over the tokens: or < and < not, parentheses. The first
// error stops it.
class Parser {
public:
  explicit Parser(std::string_view text) : tokens_(tokens_of(text)) {}

  // The tree (nullptr for an empty text) or the first error.
  std::variant<std::shared_ptr<const FilterNode>, FilterError> parse() {
    if (peek().type == Token::Type::end)
      return nullptr;
    auto node = parse_or();
    if (node && peek().type != Token::Type::end)
      fail(peek(), peek().type == Token::Type::close ? "no '(' before this ')'"
                                                     : "expected and, or, or the end here");
    if (error_)
      return *error_;
    return std::make_shared<const FilterNode>(std::move(*node));
  }

private:
  const Token &peek(size_t ahead = 0) const {
    return tokens_[std::min(at_ + ahead, tokens_.size() - 1)];
  }
  const Token &next() {
    const Token &t = tokens_[at_];
    if (at_ + 1 < tokens_.size())
      at_++;
    return t;
  }
  std::nullopt_t fail(const Token &t, std::string message) {
    if (!error_)
      error_ = FilterError{t.column, std::string(t.text), std::move(message)};
    return std::nullopt;
  }

  std::optional<FilterNode> parse_or() { return parse_list(FilterNode::Op::any, is_or); }
  std::optional<FilterNode> parse_and() { return parse_list(FilterNode::Op::all, is_and); }

  std::optional<FilterNode> parse_list(FilterNode::Op op, bool (*separator)(const Token &)) {
    std::vector<FilterNode> children;
    do {
      auto child = op == FilterNode::Op::any ? parse_and() : parse_unary();
      if (!child)
        return std::nullopt;
      children.push_back(std::move(*child));
    } while (separator(peek()) && (next(), true));
    return combine(op, std::move(children));
  }

  std::optional<FilterNode> parse_unary() {
    const Token &t = peek();
    if (is_not(t)) {
      next();
      auto child = parse_unary();
      if (!child)
        return std::nullopt;
      FilterNode node;
      node.op = FilterNode::Op::negate;
      node.children.push_back(std::move(*child));
      return node;
    }
    if (t.type == Token::Type::open) {
      const Token &open = next();
      auto inner = parse_or();
      if (!inner)
        return std::nullopt;
      if (peek().type != Token::Type::close)
        return fail(peek(), fmt::format("expected ')' to close the '(' at column {}", open.column));
      next();
      return inner;
    }
    return parse_primitive();
  }

  // True when the next tokens begin a primitive: a field, maybe after src/dst.
  bool primitive_follows() const {
    return find_field(peek().text) || (is_side(peek()) && peek().type == Token::Type::word);
  }

  std::optional<FilterNode> parse_primitive() {
    const Token &t = peek();
    if (t.type == Token::Type::word)
      if (const auto *proto = find_proto_word(t.text)) {
        next();
        FilterNode node;
        node.test = proto_test(*proto);
        if (!primitive_follows())
          return node;
        auto rest = parse_primitive(); // "tcp port 80": tcp and port 80
        if (!rest)
          return std::nullopt;
        return combine(FilterNode::Op::all, {std::move(node), std::move(*rest)});
      }
    const Token &side_token = peek();
    auto side = parse_side();
    if (!side)
      return std::nullopt;
    const Token &name = peek();
    const FilterField *field = name.type == Token::Type::word ? find_field(name.text) : nullptr;
    if (!field) {
      if (*side == Side::any && last_ && name.type == Token::Type::word &&
          !find_proto_word(name.text) && !is_and(name) && !is_or(name) && !is_not(name))
        return parse_value(*last_, name); // "port 80 or 443": port 443
      return fail(name, *side == Side::any
                            ? "expected a filter: " + field_names() +
                                  ", tcp, udp, icmp, icmp6, sctp, arp, ip4, ip6, not or '('"
                            : "expected a field after src or dst: host, net, port, portrange, "
                              "bytes or packets");
    }
    next();
    if (*side != Side::any && field->src.empty())
      return fail(side_token, fmt::format("{} has no src or dst", field->name));
    FilterTest test{field, *side, "=", {}};
    if (compares(field->kind))
      if (const auto *c = find_comparison(peek().text)) {
        next();
        test.op = c->sql;
      }
    return parse_value(test, peek());
  }

  // src, dst, src or dst, src and dst; Side::any when none of them.
  std::optional<Side> parse_side() {
    if (!is_side(peek()) || peek().type != Token::Type::word)
      return Side::any;
    std::string_view first = next().text;
    bool src = first == "src";
    if ((is_or(peek()) || is_and(peek())) && is_side(peek(1)) && peek(1).text != first) {
      bool both = is_and(next());
      next();
      return both ? Side::both : Side::either;
    }
    return src ? Side::src : Side::dst;
  }

  std::optional<FilterNode> parse_value(FilterTest test, const Token &value) {
    if (value.type != Token::Type::word)
      return fail(value, fmt::format("expected {} after {}", expected_value(test.field->kind),
                                     test.field->name));
    next();
    auto values = parse_values(test.field->kind, value.text);
    if (auto *message = std::get_if<std::string>(&values))
      return fail(value, *message);
    test.values = std::move(std::get<std::vector<SqlValue>>(values));
    last_ = test;
    FilterNode node;
    node.test = std::move(test);
    return node;
  }

  static FilterTest proto_test(const ProtoWord &p) {
    if (p.proto.empty()) // the address family: the originator's address in 0/0 or ::/0
      return {find_field("net"), Side::src, "=",
              std::get<std::vector<SqlValue>>(parse_values(ValueKind::network, p.net))};
    return {find_field("proto"), Side::any, "=", {std::string(p.proto)}};
  }

  std::vector<Token> tokens_;
  size_t at_ = 0;
  std::optional<FilterTest> last_; // the last primitive, for "port 80 or 443"
  std::optional<FilterError> error_;
};

// SQL text of a tree; values become :f1, :f2, ... in `out.params`.
class SqlWriter {
public:
  SqlWriter(FilterSql &out, bool hour_index) : out_(out), hour_index_(hour_index) {}

  std::string node(const FilterNode &n) {
    switch (n.op) {
    case FilterNode::Op::all:
    case FilterNode::Op::any: {
      std::vector<std::string> parts;
      for (const auto &child : n.children)
        parts.push_back(node(child));
      return joined(parts, n.op == FilterNode::Op::all ? " AND " : " OR ");
    }
    case FilterNode::Op::negate:
      return "(NOT " + node(n.children[0]) + ")";
    case FilterNode::Op::test:
      break;
    }
    return test(n.test);
  }

private:
  // "(a AND b AND c)"
  static std::string joined(const std::vector<std::string> &parts, std::string_view separator) {
    std::string out = "(";
    for (size_t i = 0; i < parts.size(); i++)
      out.append(i ? separator : "").append(parts[i]);
    return out + ")";
  }

  std::string param(const SqlValue &value) {
    auto name = fmt::format(":f{}", out_.params.size() + 1);
    out_.params.emplace_back(name, value);
    return name;
  }

  std::string test(const FilterTest &t) {
    std::vector<std::string> p;
    for (const auto &value : t.values)
      p.push_back(param(value));
    const auto &f = *t.field;
    std::string sql;
    switch (t.side) {
    case Side::any:
      sql =
          f.value.empty() ? joined({on(t, f.src, p), on(t, f.dst, p)}, " OR ") : on(t, f.value, p);
      break;
    case Side::src:
      sql = on(t, f.src, p);
      break;
    case Side::dst:
      sql = on(t, f.dst, p);
      break;
    case Side::either:
    case Side::both:
      sql = joined({on(t, f.src, p), on(t, f.dst, p)}, t.side == Side::both ? " AND " : " OR ");
      break;
    }
    return f.guard.empty() ? sql : fmt::format("({} AND {})", f.guard, sql);
  }

  // The test on one value (a column or an expression of columns).
  std::string on(const FilterTest &t, std::string_view value, const std::vector<std::string> &p) {
    std::string hour = hour_index_ && t.field->indexed
                           ? fmt::format("c.end_ns / {} IN hours AND ", index_hour_ns)
                           : "";
    out_.uses_hours |= !hour.empty();
    switch (t.field->kind) {
    case ValueKind::port_range:
      return fmt::format("{} BETWEEN {} AND {}", value, p[0], p[1]);
    case ValueKind::network:
      if (p.size() == 1) // the whole length: one address
        return fmt::format("({}{} = {})", hour, value, p[0]);
      if (p.size() == 4) // a text range holds every address of the network
        return fmt::format("({}{} >= {} AND {} < {} AND tcflows_in_net({}, {}, {}))", hour, value,
                           p[2], value, p[3], value, p[0], p[1]);
      return fmt::format("tcflows_in_net({}, {}, {})", value, p[0], p[1]);
    default:
      return fmt::format("({}{} {} {})", hour, value, t.op, p[0]);
    }
  }

  FilterSql &out_;
  bool hour_index_;
};

} // namespace

std::string FilterError::text() const {
  if (token.empty())
    return fmt::format("column {}, at the end: {}", column, message);
  return fmt::format("column {}, '{}': {}", column, token, message);
}

std::variant<Filter, FilterError> Filter::parse(std::string_view text) {
  auto parsed = Parser(text).parse();
  if (auto *error = std::get_if<FilterError>(&parsed))
    return *error;
  Filter filter;
  filter.root_ = std::get<std::shared_ptr<const FilterNode>>(std::move(parsed));
  return filter;
}

std::variant<Filter, FilterError> Filter::primitive(std::string_view field_name,
                                                    std::string_view value) {
  const auto *field = find_field(field_name);
  if (!field)
    throw std::logic_error(fmt::format("filter: no field {}", field_name));
  auto values = parse_values(field->kind, value);
  if (auto *message = std::get_if<std::string>(&values))
    return FilterError{0, std::string(value), *message};
  auto node = std::make_shared<FilterNode>();
  node->test = {field, Side::any, "=", std::move(std::get<std::vector<SqlValue>>(values))};
  Filter filter;
  filter.root_ = std::move(node);
  return filter;
}

Filter operator&&(const Filter &a, const Filter &b) {
  if (a.admits_all())
    return b;
  if (b.admits_all())
    return a;
  Filter both;
  both.root_ = std::make_shared<const FilterNode>(
      combine(FilterNode::Op::all, {FilterNode(*a.root_), FilterNode(*b.root_)}));
  return both;
}

FilterSql Filter::sql(bool hour_index) const {
  FilterSql out;
  if (root_)
    out.sql = SqlWriter(out, hour_index).node(*root_);
  return out;
}

std::string filter_help() {
  return fmt::format(
      R"(Filter: -f 'EXPR', or the words after the options as tcpdump takes them (quote < > ! ( )
for the shell). It selects connections:
  [src|dst] host ADDR         an IPv4, IPv6 or MAC address
  [src|dst] net CIDR          10.0.0.0/8, 2001:db8::/32, ::ffff:0:0/96 (v4-mapped: IPv6 only)
  [src|dst] port [OP] N       ports of TCP, UDP, SCTP, DCCP and UDPLite connections
  [src|dst] portrange N-M
  proto NAME|N                tcp udp icmp icmp6 sctp arp ... or a number; tcp, udp, ... alone
                              too, and before a test: tcp port 80; ip4, ip6: the family
  iface NAME   state SF|S0|REJ|...   close fin|rst|idle|shutdown|eof   vlan [OP] N   uid UID
  community-id ID             the Community ID v1 (1:base64), as Zeek and Suricata log it
  [src|dst] bytes [OP] N      the connection's whole counts: 1500, 1k, 1.5M, 2G (x1000), 64KiB,
  [src|dst] packets [OP] N    1MiB (x1024); src: what the originator sent, dst: the responder
  duration [OP] T, rtt [OP] T 250us, 10ms, 1.5s, 2m, 1h30m (without an rtt: false)
  [src|dst] retx [OP] N       TCP retransmitted segments; ooo: out of order; zero-windows:
                              zero window advertisements (other protocols: false)
OP: = == != < <= > >=, or eq ne lt le gt ge; = when none. src or dst is the default; src and dst:
both. not (!) binds tighter than and (&&), and tighter than or (||), unlike tcpdump, where and
and or bind alike; parentheses group. A value alone repeats the test before it: port 80 or 443.
Fields: {}.
--every: a traffic row counts whole in the bucket its interval ends in, never split.)",
      field_names());
}

} // namespace tcflows
