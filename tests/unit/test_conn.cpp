// The record's names: every state and close reason printed and parsed back,
// uids kept inline.
#include "track/conn.h"

#include <doctest/doctest.h>

#include <string>

using namespace tcflows;

TEST_CASE("conn_state names are Zeek's, and parse back") {
  const char *zeek[] = {"S0",   "S1",     "SF",    "REJ", "S2",  "S3", "RSTO",
                        "RSTR", "RSTOS0", "RSTRH", "SH",  "SHR", "OTH"};
  for (int i = 0; i <= int(ConnState::OTH); i++) {
    auto state = static_cast<ConnState>(i);
    CHECK(state_name(state) == zeek[i]);
    CHECK(parse_state(zeek[i]) == state);
  }
  CHECK_FALSE(parse_state("sf"));
  CHECK_FALSE(parse_state(""));
}

TEST_CASE("close reasons print as the database and JSON lines hold them") {
  CHECK(close_reason_name(CloseReason::open).empty());
  CHECK(close_reason_name(CloseReason::fin) == "fin");
  CHECK(close_reason_name(CloseReason::rst) == "rst");
  CHECK(close_reason_name(CloseReason::idle) == "idle");
  CHECK(close_reason_name(CloseReason::shutdown) == "shutdown");
  CHECK(close_reason_name(CloseReason::eof) == "eof");
  for (int i = 0; i <= int(CloseReason::eof); i++) {
    auto reason = static_cast<CloseReason>(i);
    CHECK(parse_close_reason(close_reason_name(reason)) == reason);
  }
  CHECK_FALSE(parse_close_reason("FIN"));
}

TEST_CASE("uids: up to 18 characters inline, compared by their text") {
  auto uid = Uid::from("CAbc123");
  REQUIRE(uid);
  CHECK(uid->view() == "CAbc123");
  CHECK(Uid::from(std::string(18, 'x'))->view().size() == 18);
  CHECK_FALSE(Uid::from(std::string(19, 'x')));
  CHECK_FALSE(Uid::from(""));
  CHECK(*Uid::from("Ca") < *Uid::from("Cb"));
  CHECK(*Uid::from("Ca") == *Uid::from("Ca"));
  CHECK(UidHash{}(*Uid::from("Ca")) == UidHash{}(*Uid::from("Ca")));
}

TEST_CASE("history: letters inline, the first 31 kept") {
  History h("ShADadFf");
  CHECK(h.view() == "ShADadFf");
  CHECK(History(std::string(40, 'd')).size() == History::capacity);
  CHECK(History().view().empty());
}
