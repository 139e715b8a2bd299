// The file-parts readers (flow_parts/readers.hpp). simdjson's error codes, not its exceptions:
// every problem becomes a FormatError saying what is wrong.
#include "flow_parts/readers.hpp"

#include <simdjson.h>

#include <limits>

#include "flow/text.hpp"
#include "flow_parts/file_parts.hpp"

namespace flow::parts {
namespace {

using simdjson::dom::element;

[[noreturn]] void fail(const std::string& what) { throw FormatError(what); }

// Copies the text into simdjson's padded buffer: any bytes are safe to parse.
element parse(simdjson::dom::parser& parser, std::string_view text) {
  element doc;
  if (const auto err = parser.parse(text.data(), text.size(), true).get(doc))
    fail(std::string("it is not valid JSON (") + simdjson::error_message(err) + ")");
  if (!doc.is_object()) fail("it is not a JSON object");
  return doc;
}

// Refuses a file of another format (a newer Flow's, or no Flow file at all) before reading it.
void check_version(element doc) {
  int64_t v = 0;
  if (doc["version"].get_int64().get(v))
    fail("it has no numeric \"version\" field, so it is not a Flow checkpoint file");
  if (v != kFormatVersion)
    fail("it is format version " + std::to_string(v) + ", but this flowctl reads version " +
         std::to_string(kFormatVersion) + " (written by another Flow version: run that version)");
}

std::string string_field(element obj, const char* key, const std::string& where) {
  std::string_view s;
  if (obj[key].get_string().get(s)) fail(where + " has no string \"" + key + "\"");
  return std::string(s);
}

int64_t int_field(element obj, const char* key, const std::string& where) {
  int64_t v = 0;
  if (obj[key].get_int64().get(v)) fail(where + " has no integer \"" + key + "\"");
  return v;
}

// The "ranges" of a manifest entry or of archived-offsets.json (whose entries have no "begin").
std::vector<PositionRange> ranges_of(element doc) {
  simdjson::dom::array list;
  if (doc["ranges"].get_array().get(list)) fail("it has no \"ranges\" list");
  std::vector<PositionRange> out;
  for (element r : list) {
    const std::string where = "range " + std::to_string(out.size());
    if (!r.is_object()) fail(where + " is not an object");
    PositionRange x;
    x.source = string_field(r, "source", where);
    const int64_t partition = int_field(r, "partition", where);
    if (partition < std::numeric_limits<int32_t>::min() || partition > std::numeric_limits<int32_t>::max())
      fail(where + " has partition " + std::to_string(partition) + ", outside the 32-bit range");
    x.partition = static_cast<int32_t>(partition);
    x.end = int_field(r, "end", where);
    x.begin = r["begin"].error() == simdjson::NO_SUCH_FIELD ? x.end : int_field(r, "begin", where);
    if (x.end < 0 || x.begin < 0 || x.begin > x.end)
      fail("bad range [" + std::to_string(x.begin) + ", " + std::to_string(x.end) + ")");
    out.push_back(std::move(x));
  }
  return out;
}

}  // namespace

ManifestEntry parse_manifest(std::string_view text) {
  simdjson::dom::parser parser;
  const element doc = parse(parser, text);
  check_version(doc);
  ManifestEntry m;
  m.ranges = ranges_of(doc);
  uint64_t bytes = 0;
  if (doc["bytes"].get_uint64().get(bytes) == simdjson::SUCCESS) m.bytes = bytes;
  uint64_t rows = 0;
  if (doc["rows"].get_uint64().get(rows) == simdjson::SUCCESS) m.rows = rows;
  std::string_view header;
  if (doc["header"].get_string().get(header) == simdjson::SUCCESS) m.header = std::string(header);
  return m;
}

std::vector<PositionRange> parse_archived_offsets(std::string_view text) {
  simdjson::dom::parser parser;
  const element doc = parse(parser, text);
  check_version(doc);
  return ranges_of(doc);
}

std::string archived_offsets_json(const std::vector<PositionRange>& ends) {
  std::string j = "{\"version\":1,\"ranges\":[";
  for (std::size_t i = 0; i < ends.size(); ++i) {
    if (i) j += ",";
    j += "{\"source\":";
    append_json_string(j, ends[i].source);
    j += ",\"partition\":" + std::to_string(ends[i].partition) + ",\"end\":" + std::to_string(ends[i].end) + "}";
  }
  j += "]}\n";
  return j;
}

std::string journal_json(const Job& job) {
  std::string j = "{\"version\":1,\"state\":";
  append_json_string(j, job.state);
  j += ",\"parts_dir\":";
  append_json_string(j, job.parts_dir);
  j += ",\"checkpoint_dir\":";
  append_json_string(j, job.checkpoint_dir);
  j += ",\"backup_dir\":";
  append_json_string(j, job.backup_dir);
  j += ",\"target\":";
  append_json_string(j, job.target);
  j += ",\"parts\":[";
  for (std::size_t i = 0; i < job.parts.size(); ++i) {
    if (i) j += ",";
    append_json_string(j, job.parts[i]);
  }
  j += "]}\n";
  return j;
}

Job parse_journal(std::string_view text) {
  simdjson::dom::parser parser;
  const element doc = parse(parser, text);
  check_version(doc);
  Job job;
  job.state = string_field(doc, "state", "it");
  job.target = string_field(doc, "target", "it");
  job.parts_dir = string_field(doc, "parts_dir", "it");
  std::string_view s;
  if (doc["checkpoint_dir"].get_string().get(s) == simdjson::SUCCESS) job.checkpoint_dir = s;
  if (doc["backup_dir"].get_string().get(s) == simdjson::SUCCESS) job.backup_dir = s;
  simdjson::dom::array parts;
  if (doc["parts"].get_array().get(parts)) fail("it has no \"parts\" list");
  for (element v : parts) {
    std::string_view name;
    if (v.get_string().get(name)) fail("part " + std::to_string(job.parts.size()) + " is not a string");
    if (!parse_part_name(std::string(name))) fail("'" + std::string(name) + "' is not a part name");
    job.parts.emplace_back(name);
  }
  if (job.target.empty() || job.target.find('/') != std::string::npos || job.target.front() == '.' ||
      job.target.find('\0') != std::string::npos)
    fail("bad target '" + job.target + "'");
  if (job.state != "planned" && job.state != "archived" && job.state != "cleaned")
    fail("unknown state '" + job.state + "'");
  return job;
}

std::string_view PartScanner::feed(std::string_view chunk) {
  if (in_header_) {
    std::size_t i = 0;
    for (; i < chunk.size(); ++i) {
      if (chunk[i] == '"') in_quotes_ = !in_quotes_;
      else if (chunk[i] == '\n' && !in_quotes_) break;
    }
    header_.append(chunk.substr(0, i));
    if (i == chunk.size()) return {};
    in_header_ = false;  // and in_quotes_ is false: the line feed was outside quotes
    if (!header_.empty() && header_.back() == '\r') header_.pop_back();
    chunk = chunk.substr(i + 1);
    last_ = '\n';
  }
  for (const char c : chunk) {
    if (c == '"') in_quotes_ = !in_quotes_;
    else if (c == '\n' && !in_quotes_) ++rows_;
  }
  if (!chunk.empty()) last_ = chunk.back();
  return chunk;
}

std::string PartScanner::header() const {
  if (in_header_ && !header_.empty() && header_.back() == '\r') return header_.substr(0, header_.size() - 1);
  return header_;
}

bool PartScanner::finish() {
  if (in_header_) fail("it has no complete header line");
  if (last_ == '\n') return false;
  last_ = '\n';  // a second finish() adds nothing
  ++rows_;
  return true;
}

}  // namespace flow::parts
