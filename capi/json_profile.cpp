// A profile written as JSON, turned into the equivalent TOML text so that
// one loader (profiles/) validates both. Keys are always quoted, so any JSON
// key survives; values TOML cannot hold (null) are refused by their path.
#include <cstdint>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "capi/handles.hpp"
#include "profiles/profiles.hpp"

namespace sbx::capi {
namespace {

using nlohmann::json;

std::string inline_value(const json& v, const std::string& path) {
  switch (v.type()) {
    case json::value_t::string:
      return profiles::toml_quote(v.get_ref<const std::string&>());
    case json::value_t::boolean:
      return v.get<bool>() ? "true" : "false";
    case json::value_t::number_integer:
      return std::to_string(v.get<std::int64_t>());
    case json::value_t::number_unsigned: {
      auto u = v.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        throw Error(fmt::format("JSON profile: {} = {} is too large", path, u),
                    "write sizes as strings such as \"4G\"");
      }
      return std::to_string(u);
    }
    case json::value_t::number_float: {
      std::string s = v.dump();
      // TOML floats need a fraction or an exponent.
      if (s.find_first_of(".eE") == std::string::npos) s += ".0";
      return s;
    }
    case json::value_t::array: {
      std::string out = "[";
      std::size_t i = 0;
      for (const auto& item : v) {
        if (i) out += ", ";
        out += inline_value(item, fmt::format("{}[{}]", path, i++));
      }
      return out + "]";
    }
    case json::value_t::object: {
      std::string out = "{";
      bool first = true;
      for (const auto& [key, item] : v.items()) {
        out += first ? " " : ", ";
        first = false;
        out += profiles::toml_quote(key);
        out += " = ";
        out += inline_value(item, fmt::format("{}.{}", path, key));
      }
      return out + (first ? "}" : " }");
    }
    default:
      throw Error(fmt::format("JSON profile: {} is null", path.empty() ? "the value" : path),
                  "omit the key instead of setting it to null");
  }
}

// Scalars and arrays of `table` first, then each sub-table as a [section].
void write_table(const json& table, const std::vector<std::string>& path, std::string& out) {
  std::string dotted;
  for (const auto& p : path) dotted += (dotted.empty() ? "" : ".") + p;
  for (const auto& [key, v] : table.items()) {
    if (v.is_object()) continue;
    out += fmt::format("{} = {}\n", profiles::toml_quote(key),
                       inline_value(v, dotted.empty() ? key : fmt::format("{}.{}", dotted, key)));
  }
  for (const auto& [key, v] : table.items()) {
    if (!v.is_object()) continue;
    std::vector<std::string> sub = path;
    sub.push_back(key);
    std::string header;
    for (const auto& p : sub) header += (header.empty() ? "" : ".") + profiles::toml_quote(p);
    out += "\n[" + header + "]\n";
    write_table(v, sub, out);
  }
}

}  // namespace

std::string json_profile_to_toml(std::string_view json_text) {
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::parse_error& e) {
    throw Error(fmt::format("JSON profile: {}", e.what()), "pass valid JSON text");
  }
  if (!doc.is_object()) {
    throw Error(
        "JSON profile: the top level is not an object",
        "pass an object such as {\"extends\": \"base\", \"network\": {\"mode\": \"none\"}}");
  }
  std::string out;
  write_table(doc, {}, out);
  return out;
}

}  // namespace sbx::capi
