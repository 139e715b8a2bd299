#include "record_validator.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>

#include "flow/options.hpp"

namespace json_validator {

// ---------------------------------------------------------------------------------------------
// Schema option

namespace {

const std::vector<std::string> kSpecKeys = {"type", "required", "min", "max", "allowed", "format"};

std::vector<std::string> type_names() { return {kFieldTypeNames.begin(), kFieldTypeNames.end()}; }

std::string what_is(const flow::Value& v) {
  if (v.is_scalar()) return "'" + v.text() + "'";
  return std::string("a ") + flow::Value::kind_name(v.kind());
}

bool parse_type(const flow::Value& v, const std::string& ctx, FieldType& out, std::vector<flow::ConfigError>& errors) {
  if (!v.is_scalar()) {
    errors.push_back({v.location(), ctx + "expected a type (int, float, string, bool, timestamp), got " + what_is(v)});
    return false;
  }
  for (std::size_t i = 0; i < kFieldTypeNames.size(); ++i)
    if (v.text() == kFieldTypeNames[i]) {
      out = static_cast<FieldType>(i);
      return true;
    }
  errors.push_back({v.location(), ctx + "unknown type '" + v.text() + "'" + flow::did_you_mean(v.text(), type_names()) +
                                      " (types: int, float, string, bool, timestamp)"});
  return false;
}

void parse_bound(const flow::Value& v, const std::string& ctx, const char* key, FieldSpec& f,
                 std::vector<flow::ConfigError>& errors) {
  if (f.type == FieldType::Int) {
    auto i = v.is_scalar() && !v.quoted() ? flow::parse_int(v.text()) : std::nullopt;
    if (!i) {
      errors.push_back({v.location(), ctx + "'" + key + "' must be an integer, got " + what_is(v)});
      return;
    }
    (key[1] == 'i' ? f.min_int : f.max_int) = *i;
  } else if (f.type == FieldType::Float) {
    auto d = v.is_scalar() && !v.quoted() ? flow::parse_double(v.text()) : std::nullopt;
    if (!d) {
      errors.push_back({v.location(), ctx + "'" + key + "' must be a number, got " + what_is(v)});
      return;
    }
    (key[1] == 'i' ? f.min : f.max) = *d;
  } else {
    errors.push_back({v.location(), ctx + "'" + key + "' applies only to int and float fields, not " +
                                        std::string(kFieldTypeNames[static_cast<std::size_t>(f.type)])});
  }
}

void parse_allowed(const flow::Value& v, const std::string& ctx, FieldSpec& f, std::vector<flow::ConfigError>& errors) {
  if (f.type == FieldType::Timestamp) {
    errors.push_back({v.location(), ctx + "'allowed' is not supported for timestamp fields"});
    return;
  }
  if (!v.is_list() || v.items().empty()) {
    errors.push_back({v.location(), ctx + "'allowed' must be a non-empty list of values, got " + what_is(v)});
    return;
  }
  for (const auto& item : v.items()) {
    const bool plain = item.is_scalar() && !item.quoted();
    switch (f.type) {
      case FieldType::String:
        if (!item.is_scalar()) errors.push_back({item.location(), ctx + "allowed value must be a string, got " + what_is(item)});
        else f.allowed_strings.push_back(item.text());
        break;
      case FieldType::Int:
        if (auto i = plain ? flow::parse_int(item.text()) : std::nullopt) f.allowed_ints.push_back(*i);
        else errors.push_back({item.location(), ctx + "allowed value must be an integer, got " + what_is(item)});
        break;
      case FieldType::Float:
        if (auto d = plain ? flow::parse_double(item.text()) : std::nullopt) f.allowed_floats.push_back(*d);
        else errors.push_back({item.location(), ctx + "allowed value must be a number, got " + what_is(item)});
        break;
      case FieldType::Bool:
        if (auto b = plain ? flow::parse_bool(item.text()) : std::nullopt) f.allowed_bools.push_back(*b);
        else errors.push_back({item.location(), ctx + "allowed value must be true or false, got " + what_is(item)});
        break;
      case FieldType::Timestamp: break;
    }
  }
}

}  // namespace

std::vector<FieldSpec> parse_schema(const flow::Value& schema, std::vector<flow::ConfigError>& errors) {
  std::vector<FieldSpec> out;
  const std::string shape = "a map of field name -> type (int, float, string, bool, timestamp) or field spec";
  if (!schema.is_map()) {
    errors.push_back({schema.location(), "option 'schema': expected " + shape + ", got " + what_is(schema)});
    return out;
  }
  if (schema.entries().empty()) {
    errors.push_back({schema.location(), "option 'schema': no fields"});
    return out;
  }
  for (const auto& e : schema.entries()) {
    FieldSpec f;
    f.name = e.key;
    f.where = e.key_location;
    const std::string ctx = "schema field '" + e.key + "': ";
    if (e.key.empty()) errors.push_back({e.key_location, "option 'schema': empty field name"});
    const flow::Value& v = e.value;
    bool typed = false;
    if (v.is_scalar()) {
      typed = parse_type(v, ctx, f.type, errors);
    } else if (v.is_map()) {
      for (const auto& k : v.entries())
        if (std::find(kSpecKeys.begin(), kSpecKeys.end(), k.key) == kSpecKeys.end())
          errors.push_back({k.key_location, ctx + "unknown key '" + k.key + "'" + flow::did_you_mean(k.key, kSpecKeys) +
                                                " (keys: type, required, min, max, allowed, format)"});
      if (const flow::Value* t = v.find("type")) typed = parse_type(*t, ctx, f.type, errors);
      else errors.push_back({v.location(), ctx + "missing 'type' (int, float, string, bool, timestamp)"});
      if (const flow::Value* r = v.find("required")) {
        auto b = r->is_scalar() && !r->quoted() ? flow::parse_bool(r->text()) : std::nullopt;
        if (b) f.required = *b;
        else errors.push_back({r->location(), ctx + "'required' must be true or false, got " + what_is(*r)});
      }
      if (typed) {
        const flow::Value* min = v.find("min");
        const flow::Value* max = v.find("max");
        if (min) parse_bound(*min, ctx, "min", f, errors);
        if (max) parse_bound(*max, ctx, "max", f, errors);
        if ((f.min_int && f.max_int && *f.min_int > *f.max_int) || (f.min && f.max && *f.min > *f.max))
          errors.push_back({min->location(), ctx + "min " + min->text() + " is greater than max " + max->text()});
        if (const flow::Value* a = v.find("allowed")) parse_allowed(*a, ctx, f, errors);
        if (const flow::Value* fmt = v.find("format")) {
          if (f.type != FieldType::Timestamp) {
            errors.push_back({fmt->location(), ctx + "'format' applies only to timestamp fields"});
          } else if (!fmt->is_scalar()) {
            errors.push_back({fmt->location(), ctx + "'format' must be a string, got " + what_is(*fmt)});
          } else if (auto err = TimestampFormat::compile(fmt->text(), f.format)) {
            errors.push_back({fmt->location(), ctx + *err});
          }
        }
      }
    } else {
      errors.push_back({v.is_null() ? e.key_location : v.location(),
                        ctx + "expected a type (int, float, string, bool, timestamp) or a field spec map, got " +
                            what_is(v)});
    }
    if (typed && f.type == FieldType::Timestamp && f.format.text().empty())
      (void)TimestampFormat::compile("%Y-%m-%d %H:%M:%S", f.format);
    out.push_back(std::move(f));
  }
  return out;
}

flow::SchemaPtr output_schema(const std::vector<FieldSpec>& fields) {
  std::vector<flow::Field> out;
  for (const auto& f : fields) {
    flow::Type t = flow::Type::String;
    switch (f.type) {
      case FieldType::Int: t = flow::Type::Int64; break;
      case FieldType::Float: t = flow::Type::Float64; break;
      case FieldType::String: t = flow::Type::String; break;
      case FieldType::Bool: t = flow::Type::Bool; break;
      case FieldType::Timestamp: t = flow::Type::Timestamp; break;
    }
    out.push_back({f.name, t});
  }
  return flow::make_schema(std::move(out));
}

// ---------------------------------------------------------------------------------------------
// Messages (built only for rejected records)

namespace {

// At most `limit` bytes of `s`, cut at a UTF-8 character boundary.
std::string_view clip(std::string_view s, std::size_t limit = 48) {
  if (s.size() <= limit) return s;
  std::size_t n = limit;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

void append_number(std::string& out, int64_t v) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  out.append(buf, p);
}
void append_number(std::string& out, uint64_t v) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  out.append(buf, p);
}
void append_number(std::string& out, double v) {
  char buf[32];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  out.append(buf, p);
}

const char* json_type_name(simdjson::dom::element_type t) {
  using T = simdjson::dom::element_type;
  switch (t) {
    case T::ARRAY: return "an array";
    case T::OBJECT: return "an object";
    case T::INT64:
    case T::UINT64: return "an integer";
    case T::DOUBLE: return "a number with a fraction or exponent";
    case T::STRING: return "a string";
    case T::BOOL: return "a boolean";
    case T::NULL_VALUE: return "null";
  }
  return "?";
}

const char* expected_name(FieldType t) {
  switch (t) {
    case FieldType::Int: return "an integer";
    case FieldType::Float: return "a number";
    case FieldType::String: return "a string";
    case FieldType::Bool: return "a boolean";
    case FieldType::Timestamp: return "a timestamp string";
  }
  return "?";
}

bool ieq(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != b[i]) return false;
  return true;
}

// NaN, Infinity and friends, as some encoders write them (bare or quoted).
bool non_finite_word(std::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  return ieq(s, "nan") || ieq(s, "inf") || ieq(s, "infinity");
}

// Offset of the first byte that makes `s` invalid UTF-8 (RFC 3629: no overlongs, surrogates or
// code points above U+10FFFF), or npos.
std::size_t first_invalid_utf8(std::string_view s) {
  const auto* b = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  for (std::size_t i = 0; i < n;) {
    const unsigned c = b[i];
    std::size_t len = 0;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80) len = 1;
    else if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) len = 3, lo = 0xA0;
    else if (c >= 0xE1 && c <= 0xEC) len = 3;
    else if (c == 0xED) len = 3, hi = 0x9F;
    else if (c >= 0xEE && c <= 0xEF) len = 3;
    else if (c == 0xF0) len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) len = 4, hi = 0x8F;
    else return i;
    if (i + len > n) return i;
    for (std::size_t k = 1; k < len; ++k) {
      const unsigned cc = b[i + k];
      if (cc < (k == 1 ? lo : 0x80u) || cc > (k == 1 ? hi : 0xBFu)) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// RecordValidator

namespace {
// Equality of short keys, inlined: string_view's operator== calls an out-of-line compare() here
// (callgrind: ~48 instructions per key, 4 keys per record).
inline bool same(std::string_view a, std::string_view b) {
  return a.size() == b.size() && detail::same_bytes(a.data(), b.data(), a.size());
}
}  // namespace

bool fast::Walker::supported() {
  // The walker is compiled for simdjson's haswell kernel; the DOM parser already picked the
  // best kernel this CPU runs, so ask simdjson rather than test CPU flags here.
  static const bool ok = [] {
    const simdjson::implementation* h = simdjson::get_available_implementations()["haswell"];
    return h && h->supported_by_runtime_system();
  }();
  return ok;
}

RecordValidator::RecordValidator(std::vector<FieldSpec> fields, bool reject_extra_fields, std::size_t max_message_bytes)
    : fields_(std::move(fields)),
      reject_extra_(reject_extra_fields),
      max_bytes_(max_message_bytes),
      slots_(fields_.size()),
      seen_(fields_.size(), 0),
      last_time_(fields_.size()) {
  message_.reserve(256);
  unknown_keys_.reserve(16);
  for (std::size_t i = 0; i < fields_.size(); ++i) {
    const FieldSpec& f = fields_[i];
    const bool plain = std::none_of(f.name.begin(), f.name.end(), [](char c) {
      return c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20;
    });
    fast::Key k = fast::Key::make(f.name, static_cast<fast::Kind>(f.type), plain);
    k.required = f.required;
    if (f.min_int) k.min_int = *f.min_int;
    if (f.max_int) k.max_int = *f.max_int;
    if (f.min) k.min = *f.min;
    if (f.max) k.max = *f.max;
    keys_.push_back(k);
    if (f.type == FieldType::Timestamp || f.has_allowed()) after_walk_.push_back(i);
  }
  use_fast_path(true);
}

bool RecordValidator::use_fast_path(bool on) {
  plain_ = on;
  if (!on) walker_.reset();
  else if (!walker_ && fast::Walker::supported()) walker_ = std::make_unique<fast::Walker>();
  return walker_ != nullptr;
}

bool RecordValidator::fail(Reason r) {
  reason_ = r;
  return false;
}

bool RecordValidator::parse_timestamp(std::size_t f, std::size_t at, std::string_view s, int64_t& micros) {
  if (!fields_[f].format.parse(s, micros)) return false;
  if (s.size() <= kTimeText) {
    LastTime& last = last_time_[f][at];
    std::memcpy(last.text, s.data(), s.size());
    last.size = s.size();
    last.micros = micros;
  }
  return true;
}

void RecordValidator::copy_to_buffer(std::string_view raw) {
  const std::size_t need = raw.size() + simdjson::SIMDJSON_PADDING;
  if (need > buffer_capacity_) {
    buffer_capacity_ = std::max(need, std::max<std::size_t>(buffer_capacity_ * 2, 4096));
    buffer_ = std::make_unique<char[]>(buffer_capacity_);
  }
  std::memcpy(buffer_.get(), raw.data(), raw.size());
  std::memset(buffer_.get() + raw.size(), 0, simdjson::SIMDJSON_PADDING);
}

bool RecordValidator::validate_rest(std::string_view raw, bool tried_in_place) {
  message_.clear();
  if (raw.empty()) {
    message_ = "empty message";
    return fail(Reason::Empty);
  }
  if (raw.size() > max_bytes_) {
    message_ = "message of ";
    append_number(message_, static_cast<uint64_t>(raw.size()));
    message_ += " bytes exceeds max_message_bytes (";
    append_number(message_, static_cast<uint64_t>(max_bytes_));
    message_ += ")";
    return fail(Reason::Oversize);
  }
  // The DOM parser reads up to SIMDJSON_PADDING bytes past the end, and the fast path needs
  // that much readable: the message is copied into a padded buffer.
  // validate() has tried it in place when it could.
  copy_to_buffer(raw);
  if (!tried_in_place &&
      (accept_plain(buffer_.get(), raw.size()) || (walker_ && accept_fast(buffer_.get(), raw.size(), buffer_capacity_))))
    return true;
  return validate_dom(raw);
}

bool RecordValidator::validate_rows(const char* chars, std::size_t size, const uint32_t* offsets, std::size_t begin,
                                    std::size_t end, RowVerdict on_row, void* ctx) {
  // Row r's text validated on its own.
  auto validate_row = [&](std::size_t r) {
    return validate(std::string_view(chars + offsets[r], offsets[r + 1] - offsets[r]), size - offsets[r]);
  };
  auto alone = [&](std::size_t r) { return on_row(ctx, r, validate_row(r)); };
  // walk_rows()'s rows: walked ones are checked for the rest of the rules here, the others
  // (and walked ones these rules refuse) validated alone, which also says why.
  struct Stream {
    RecordValidator* self;
    decltype(validate_row)* validate_alone;
    RowVerdict on_row;
    void* ctx;
    bool stopped = false;
  } stream{this, &validate_row, on_row, ctx};
  auto row_done = [](void* p, std::size_t r, bool walked) {
    auto& s = *static_cast<Stream*>(p);
    bool valid;
    if (walked && s.self->accept_walked()) {
      s.self->message_.clear();
      ++s.self->stream_accepted_;
      valid = true;
    } else {
      valid = (*s.validate_alone)(r);
    }
    if (s.on_row(s.ctx, r, valid)) return true;
    s.stopped = true;
    return false;
  };
  std::size_t r = begin;
  while (r < end) {
    // Rows of the plainest form one by one (no stage 1); the first that is not starts a window.
    for (; plain_ && r < end; ++r) {
      const std::size_t len = offsets[r + 1] - offsets[r];
      if (len == 0 || len > max_bytes_ || size - offsets[r + 1] < simdjson::SIMDJSON_PADDING ||
          !accept_plain(chars + offsets[r], len))
        break;
      message_.clear();
      if (!on_row(ctx, r, true)) return false;
    }
    if (r == end) break;
    // A window of rows for one stream: not empty, within max_message_bytes, together at most
    // kStreamBytes, and the parser's padding readable after the last.
    std::size_t w = r;
    if (walker_) {
      const std::size_t limit = std::min(end, r + kStreamRows);
      while (w < limit) {
        const std::size_t len = offsets[w + 1] - offsets[w];
        if (len == 0 || len > max_bytes_ || offsets[w + 1] - offsets[r] > fast::Walker::kStreamBytes ||
            size - offsets[w + 1] < simdjson::SIMDJSON_PADDING)
          break;
        ++w;
      }
    }
    if (w - r < kMinStreamRows) {
      if (!alone(r)) return false;
      ++r;
      continue;
    }
    const std::size_t next = walker_->walk_rows(chars, offsets, r, w, keys_.data(), keys_.size(), !reject_extra_,
                                                slots_.data(), row_done, &stream);
    if (stream.stopped) return false;
    // The stream lost track of the rows from `next` on (one was not a single document): the
    // rest of the window alone, the next window in a stream again.
    for (std::size_t i = next; i < w; ++i)
      if (!alone(i)) return false;
    r = w;
  }
  return true;
}

bool RecordValidator::validate_dom(std::string_view raw) {
  simdjson::dom::element root;
  if (auto err = parser_.parse(buffer_.get(), raw.size(), false).get(root)) return classify_parse_error(raw, err);
  simdjson::dom::object object;
  if (root.get_object().get(object) != simdjson::SUCCESS) {
    message_ = "expected a JSON object, got ";
    message_ += json_type_name(root.type());
    return fail(Reason::NotAnObject);
  }

  ++generation_;
  unknown_keys_.clear();
  if (!unknown_set_.empty()) unknown_set_.clear();
  for (auto& s : slots_) s.present = false;
  const std::size_t n = fields_.size();
  std::size_t hint = 0;  // messages usually list fields in schema order
  for (auto kv : object) {
    const std::string_view key = kv.key;
    std::size_t f = n;
    if (hint < n && same(fields_[hint].name, key)) {
      f = hint;
    } else {
      for (std::size_t i = 0; i < n; ++i)
        if (same(fields_[i].name, key)) {
          f = i;
          break;
        }
    }
    if (f < n) {
      if (seen_[f] == generation_) {
        message_ = "duplicate key '";
        message_ += clip(key);
        message_ += "'";
        return fail(Reason::DuplicateKey);
      }
      seen_[f] = generation_;
      if (!check_value(f, kv.value)) return false;
      hint = f + 1;
      continue;
    }
    if (seen_unknown_key(key)) {
      message_ = "duplicate key '";
      message_ += clip(key);
      message_ += "'";
      return fail(Reason::DuplicateKey);
    }
    if (reject_extra_) {
      message_ = "unknown field '";
      message_ += clip(key);
      message_ += "' (extra_fields: reject)";
      return fail(Reason::UnknownField);
    }
  }
  for (std::size_t f = 0; f < n; ++f) {
    if (!fields_[f].required || slots_[f].present) continue;
    message_ = seen_[f] == generation_ ? "required field '" : "missing required field '";
    message_ += fields_[f].name;
    message_ += seen_[f] == generation_ ? "' is null" : "'";
    return fail(Reason::MissingField);
  }
  return true;
}

bool RecordValidator::seen_unknown_key(std::string_view key) {
  // A short list for the usual handful of extra keys; a set beyond, so a message with thousands
  // of keys costs linear time, not quadratic.
  constexpr std::size_t kLinear = 16;
  if (unknown_set_.empty()) {
    for (auto k : unknown_keys_)
      if (k == key) return true;
    if (unknown_keys_.size() < kLinear) {
      unknown_keys_.push_back(key);
      return false;
    }
    unknown_set_.insert(unknown_keys_.begin(), unknown_keys_.end());
  }
  return !unknown_set_.insert(key).second;
}

bool RecordValidator::check_value(std::size_t f, simdjson::dom::element v) {
  using T = simdjson::dom::element_type;
  const FieldSpec& spec = fields_[f];
  Slot& slot = slots_[f];
  const T t = v.type();
  if (t == T::NULL_VALUE) return true;  // null counts as absent
  auto start = [&](const char* text) {
    message_ = "field '";
    message_ += spec.name;
    message_ += "': ";
    message_ += text;
  };
  auto wrong = [&](Reason r) {
    start("expected ");
    message_ += expected_name(spec.type);
    message_ += ", got ";
    message_ += json_type_name(t);
    return fail(r);
  };
  if (t == T::ARRAY || t == T::OBJECT) return wrong(Reason::NestedValue);

  switch (spec.type) {
    case FieldType::Int: {
      int64_t i = 0;
      if (t == T::INT64) {
        i = v.get_int64().value_unsafe();
      } else if (t == T::UINT64) {
        start("");
        append_number(message_, v.get_uint64().value_unsafe());
        message_ += " does not fit in a signed 64-bit integer";
        return fail(Reason::OutOfRange);
      } else if (t == T::DOUBLE) {
        const double d = v.get_double().value_unsafe();
        start("");
        append_number(message_, d);
        if (std::nearbyint(d) == d && (d >= 0x1p63 || d < -0x1p63)) {
          message_ += " does not fit in a signed 64-bit integer";
          return fail(Reason::OutOfRange);
        }
        message_ += " is not an integer";
        return fail(Reason::WrongType);
      } else {
        return wrong(Reason::WrongType);
      }
      if ((spec.min_int && i < *spec.min_int) || (spec.max_int && i > *spec.max_int)) {
        start("");
        append_number(message_, i);
        message_ += spec.min_int && i < *spec.min_int ? " is below the minimum " : " is above the maximum ";
        append_number(message_, spec.min_int && i < *spec.min_int ? *spec.min_int : *spec.max_int);
        return fail(Reason::OutOfRange);
      }
      if (!detail::allows(spec.allowed_ints, i)) {
        start("");
        append_number(message_, i);
        message_ += " is not an allowed value";
        return fail(Reason::NotAllowed);
      }
      slot.i = i;
      break;
    }
    case FieldType::Float: {
      double d = 0;
      if (t == T::DOUBLE) d = v.get_double().value_unsafe();
      else if (t == T::INT64) d = static_cast<double>(v.get_int64().value_unsafe());
      else if (t == T::UINT64) d = static_cast<double>(v.get_uint64().value_unsafe());
      else if (t == T::STRING && non_finite_word(v.get_string().value_unsafe())) {
        start("non-finite value \"");
        message_ += clip(v.get_string().value_unsafe());
        message_ += "\"";
        return fail(Reason::NotFinite);
      } else {
        return wrong(Reason::WrongType);
      }
      if (!std::isfinite(d)) {
        start("non-finite value");
        return fail(Reason::NotFinite);
      }
      if ((spec.min && d < *spec.min) || (spec.max && d > *spec.max)) {
        start("");
        append_number(message_, d);
        message_ += spec.min && d < *spec.min ? " is below the minimum " : " is above the maximum ";
        append_number(message_, spec.min && d < *spec.min ? *spec.min : *spec.max);
        return fail(Reason::OutOfRange);
      }
      if (!detail::allows(spec.allowed_floats, d)) {
        start("");
        append_number(message_, d);
        message_ += " is not an allowed value";
        return fail(Reason::NotAllowed);
      }
      slot.d = d;
      break;
    }
    case FieldType::String: {
      if (t != T::STRING) return wrong(Reason::WrongType);
      const std::string_view s = v.get_string().value_unsafe();
      if (!detail::allows(spec.allowed_strings, s)) {
        start("'");
        message_ += clip(s);
        message_ += "' is not an allowed value";
        return fail(Reason::NotAllowed);
      }
      slot.s = s;
      break;
    }
    case FieldType::Bool: {
      if (t != T::BOOL) return wrong(Reason::WrongType);
      const bool b = v.get_bool().value_unsafe();
      if (!detail::allows(spec.allowed_bools, b)) {
        start(b ? "true" : "false");
        message_ += " is not an allowed value";
        return fail(Reason::NotAllowed);
      }
      slot.b = b;
      break;
    }
    case FieldType::Timestamp: {
      if (t != T::STRING) return wrong(Reason::WrongType);
      const std::string_view s = v.get_string().value_unsafe();
      slot.s = s;  // the text, as the fast path leaves it
      if (!timestamp(f, s, slot.i)) {
        start("'");
        message_ += clip(s);
        message_ += "' does not match the format '";
        message_ += spec.format.text();
        message_ += "' or is not a valid time";
        return fail(Reason::BadTimestamp);
      }
      break;
    }
  }
  slot.present = true;
  return true;
}

bool RecordValidator::classify_parse_error(std::string_view raw, simdjson::error_code code) {
  // simdjson reports some structural errors (an unclosed string) before invalid UTF-8; bad
  // bytes are the more basic problem, so they win whatever simdjson said.
  if (code == simdjson::UTF8_ERROR || !simdjson::validate_utf8(raw.data(), raw.size())) {
    message_ = "invalid UTF-8 at byte ";
    const std::size_t at = first_invalid_utf8(raw);
    append_number(message_, static_cast<uint64_t>(at == std::string_view::npos ? 0 : at));
    return fail(Reason::InvalidUtf8);
  }
  if (code == simdjson::EMPTY) {
    message_ = "message contains only whitespace";
    return fail(Reason::Empty);
  }
  // simdjson says only what kind of problem it met; look for the causes that have their own
  // reason (NaN/Infinity, numbers beyond 64 bits or double range) and for truncation.
  bool in_string = false;
  int depth = 0;
  for (std::size_t p = 0; p < raw.size(); ++p) {
    const char c = raw[p];
    if (in_string) {
      if (c == '\\') ++p;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      --depth;
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '+' || c == '.') {
      std::size_t e = p;
      while (e < raw.size() && (std::isalnum(static_cast<unsigned char>(raw[e])) || raw[e] == '-' || raw[e] == '+' ||
                                raw[e] == '.'))
        ++e;
      const std::string_view token = raw.substr(p, e - p);
      if (non_finite_word(token)) {
        message_ = "non-finite number '";
        message_ += clip(token);
        message_ += "' at byte ";
        append_number(message_, static_cast<uint64_t>(p));
        message_ += " (JSON has no NaN or Infinity)";
        return fail(Reason::NotFinite);
      }
      const std::string_view digits = token.substr(token[0] == '-' ? 1 : 0);
      if (!digits.empty() && digits[0] >= '0' && digits[0] <= '9') {
        const bool integral = digits.find_first_not_of("0123456789") == std::string_view::npos;
        if (integral && digits.size() > 1 && digits[0] != '0') {
          uint64_t u = 0;
          auto [q, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), u);
          (void)q;
          if (ec == std::errc::result_out_of_range) {
            message_ = "integer ";
            message_ += clip(token);
            message_ += " at byte ";
            append_number(message_, static_cast<uint64_t>(p));
            message_ += " does not fit in 64 bits";
            return fail(Reason::OutOfRange);
          }
        } else if (!integral) {
          double d = 0;
          auto [q, ec] = std::from_chars(token.data(), token.data() + token.size(), d);
          const auto exp = token.find_first_of("eE");
          const bool negative_exponent = exp != std::string_view::npos && exp + 1 < token.size() && token[exp + 1] == '-';
          if (ec == std::errc::result_out_of_range && q == token.data() + token.size() && !negative_exponent) {
            message_ = "number ";
            message_ += clip(token);
            message_ += " at byte ";
            append_number(message_, static_cast<uint64_t>(p));
            message_ += " overflows to infinity";
            return fail(Reason::NotFinite);
          }
        }
      }
      p = e - 1;
    }
  }
  if (in_string) message_ = "malformed JSON: a string is not closed (truncated message?)";
  else if (depth > 0) message_ = "malformed JSON: the message ends inside an object or array (truncated message?)";
  else {
    message_ = "malformed JSON: ";
    message_ += simdjson::error_message(code);
  }
  return fail(Reason::MalformedJson);
}

}  // namespace json_validator
