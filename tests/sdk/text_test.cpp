// flow::json_string, the one JSON string escaper (tap rows, metrics JSON, manifests): control
// characters escaped, valid UTF-8 kept, invalid UTF-8 replaced by U+FFFD per maximal subpart, so
// the output is always valid JSON, checked here by simdjson's own parser and UTF-8 validator.
#include "flow/text.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <random>

namespace {

const std::string kFffd = "\xEF\xBF\xBD";

std::string q(const std::string& s) { return "\"" + s + "\""; }

// What simdjson reads back from the literal (and whether it accepts it at all).
std::string parsed(const std::string& literal) {
  simdjson::dom::parser p;
  std::string_view v;
  if (auto err = p.parse(literal).get(v)) return std::string("<rejected: ") + simdjson::error_message(err) + ">";
  return std::string(v);
}

TEST(JsonString, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(flow::json_string("a\"b\\c\n\r\t\x01\x1f"), q("a\\\"b\\\\c\\n\\r\\t\\u0001\\u001f"));
  EXPECT_EQ(parsed(flow::json_string(std::string("nul\0here", 8))), std::string("nul\0here", 8));
}

TEST(JsonString, KeepsValidUtf8Unchanged) {
  // 2, 3 and 4-byte sequences at the edges of their ranges: U+0080, U+07FF, U+0800, U+D7FF,
  // U+E000, U+FFFF, U+10000, U+10FFFF, and text.
  const std::string valid = "\xC2\x80\xDF\xBF\xE0\xA0\x80\xED\x9F\xBF\xEE\x80\x80\xEF\xBF\xBF\xF0\x90\x80\x80"
                            "\xF4\x8F\xBF\xBF 23.5\xC2\xB0" "C Z\xC3\xBCrich \xE6\x9D\xB1\xE4\xBA\xAC \xF0\x9F\x8C\xA1";
  EXPECT_EQ(flow::json_string(valid), q(valid));
  EXPECT_EQ(parsed(flow::json_string(valid)), valid);
}

TEST(JsonString, ReplacesEachMaximalInvalidSubpartWithOneReplacementCharacter) {
  const std::pair<std::string, std::string> cases[] = {
      {"caf\xE9", "caf" + kFffd},                          // Latin-1 é
      {"\x80", kFffd},                                     // a lone continuation byte
      {"\xBF\x80", kFffd + kFffd},                         // two of them: one each
      {"\xC0\xAF", kFffd + kFffd},                         // overlong '/': C0 never starts a sequence
      {"\xE0\x80\xAF", kFffd + kFffd + kFffd},             // overlong 3-byte: E0 needs A0..BF next
      {"\xED\xA0\x80", kFffd + kFffd + kFffd},             // a surrogate (U+D800)
      {"\xF4\x90\x80\x80", kFffd + kFffd + kFffd + kFffd},  // above U+10FFFF
      {"\xF5\x80", kFffd + kFffd},                         // F5..FF never start one
      {"\xFF", kFffd},
      {"ab\xE2\x82", "ab" + kFffd},                        // cut 3-byte sequence at the end: one
      {"\xE2\x82x", kFffd + "x"},                          // cut, then ASCII: the ASCII is kept
      {"\xF0\x9F\x8C", kFffd},                             // cut 4-byte sequence
      {"\xF0\x9F\x8C\xE2\x82\xAC", kFffd + "\xE2\x82\xAC"},  // cut 4-byte, then a valid euro sign
      {"\xC3\"", kFffd + "\\\""},                          // cut before a quote: still escaped
  };
  for (const auto& [in, want] : cases) {
    EXPECT_EQ(flow::json_string(in), q(want)) << "input bytes of length " << in.size();
    EXPECT_NE(parsed(flow::json_string(in)).rfind("<rejected", 0), 0u);
  }
}

TEST(JsonString, AnyBytesGiveValidJson) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> byte(0, 255), len(0, 40);
  simdjson::dom::parser p;
  for (int i = 0; i < 20000; ++i) {
    std::string in(static_cast<std::size_t>(len(rng)), '\0');
    for (auto& c : in) c = static_cast<char>(byte(rng));
    const std::string out = flow::json_string(in);
    ASSERT_TRUE(simdjson::validate_utf8(out)) << i;
    std::string_view v;
    ASSERT_FALSE(p.parse(out).get(v)) << i;
    // Valid input comes back byte for byte.
    if (simdjson::validate_utf8(in)) {
      EXPECT_EQ(v, in) << i;
    }
  }
}

}  // namespace
