// The first bytes of an accepted connection: TLS ClientHello SNI and HTTP/1.x
// Host. Both parsers are stateless over "all bytes so far", bounds-checked at
// every read, and refuse ambiguity (duplicate SNI, two Host headers, bare LF)
// instead of guessing: an ambiguity is where a proxy and a server disagree.
#include <algorithm>

#include "egress/egress.hpp"

namespace sbx::egress {

std::string_view to_string(PeekStatus s) {
  switch (s) {
    case PeekStatus::need_more:
      return "need_more";
    case PeekStatus::found:
      return "found";
    case PeekStatus::no_name:
      return "no_name";
    case PeekStatus::wrong_protocol:
      return "wrong_protocol";
    case PeekStatus::malformed:
      return "malformed";
    case PeekStatus::too_large:
      return "too_large";
  }
  return "?";
}

namespace {

PeekResult result(PeekStatus s, std::string error = {}) {
  PeekResult r;
  r.status = s;
  r.error = std::move(error);
  return r;
}

// Lower-cases and validates a DNS host name (LDH labels of 1..63, total
// <= 253). IP literals are not names: refused by the caller's policy anyway.
std::optional<std::string> normalize_host(std::string_view h) {
  if (h.empty() || h.size() > 253) return std::nullopt;
  std::string out;
  out.reserve(h.size());
  std::size_t label = 0;
  for (char c : h) {
    if (c == '.') {
      if (label == 0) return std::nullopt;
      label = 0;
      out += c;
      continue;
    }
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok || ++label > 63) return std::nullopt;
    out += c;
  }
  if (label == 0) return std::nullopt;  // empty or trailing dot
  return out;
}

std::uint32_t be16(const std::uint8_t* p) {
  return static_cast<std::uint32_t>((p[0] << 8) | p[1]);
}
std::uint32_t be24(const std::uint8_t* p) {
  return static_cast<std::uint32_t>((p[0] << 16) | (p[1] << 8) | p[2]);
}

PeekResult parse_hello_body(std::span<const std::uint8_t> b) {
  std::size_t at = 0;
  auto need = [&](std::size_t n) { return b.size() - at >= n; };
  if (!need(2 + 32 + 1)) return result(PeekStatus::malformed, "ClientHello too short");
  if (b[0] != 3) return result(PeekStatus::malformed, "ClientHello version is not 3.x");
  at = 34;
  std::size_t sid = b[at++];
  if (sid > 32 || !need(sid + 2)) return result(PeekStatus::malformed, "bad session id");
  at += sid;
  std::size_t suites = be16(&b[at]);
  at += 2;
  if (suites < 2 || suites % 2 || !need(suites + 1))
    return result(PeekStatus::malformed, "bad cipher suites");
  at += suites;
  std::size_t comp = b[at++];
  if (comp < 1 || !need(comp)) return result(PeekStatus::malformed, "bad compression methods");
  at += comp;
  if (at == b.size()) return result(PeekStatus::no_name, "ClientHello without extensions");
  if (!need(2)) return result(PeekStatus::malformed, "extensions length truncated");
  std::size_t ext_total = be16(&b[at]);
  at += 2;
  if (ext_total != b.size() - at)
    return result(PeekStatus::malformed, "extensions length mismatch");
  std::vector<std::uint32_t> seen;
  std::optional<std::string> name;
  while (at < b.size()) {
    if (!need(4)) return result(PeekStatus::malformed, "extension header truncated");
    std::uint32_t type = be16(&b[at]);
    std::size_t len = be16(&b[at + 2]);
    at += 4;
    if (!need(len)) return result(PeekStatus::malformed, "extension truncated");
    if (std::find(seen.begin(), seen.end(), type) != seen.end()) {
      return result(PeekStatus::malformed, "duplicate extension " + std::to_string(type));
    }
    seen.push_back(type);
    if (type == 0) {  // server_name (RFC 6066)
      std::span<const std::uint8_t> e = b.subspan(at, len);
      if (e.size() < 2 || be16(e.data()) != e.size() - 2) {
        return result(PeekStatus::malformed, "server_name list length mismatch");
      }
      std::size_t p = 2;
      while (p < e.size()) {
        if (e.size() - p < 3) return result(PeekStatus::malformed, "server_name entry truncated");
        std::uint8_t kind = e[p];
        std::size_t nlen = be16(&e[p + 1]);
        p += 3;
        if (e.size() - p < nlen) return result(PeekStatus::malformed, "server_name truncated");
        if (kind == 0) {
          if (name) return result(PeekStatus::malformed, "two host names in server_name");
          auto n = normalize_host({reinterpret_cast<const char*>(&e[p]), nlen});
          if (!n) return result(PeekStatus::malformed, "server_name is not a valid host name");
          name = std::move(*n);
        }
        p += nlen;
      }
      if (!name) return result(PeekStatus::malformed, "server_name without a host name");
    }
    at += len;
  }
  if (!name) return result(PeekStatus::no_name, "ClientHello without server_name");
  PeekResult r = result(PeekStatus::found);
  r.name = std::move(*name);
  return r;
}

}  // namespace

PeekResult parse_client_hello(std::span<const std::uint8_t> data, std::size_t cap) {
  if (data.empty()) return result(PeekStatus::need_more);
  if (data[0] != 0x16) return result(PeekStatus::wrong_protocol, "not a TLS handshake record");
  if (data.size() >= 2 && data[1] != 3)
    return result(PeekStatus::wrong_protocol, "not TLS (record version)");
  std::vector<std::uint8_t> hs;  // the handshake stream, records stripped
  std::size_t at = 0;
  bool first = true;
  while (data.size() - at >= 5) {
    const std::uint8_t* h = &data[at];
    if (h[0] != 0x16) {
      return first ? result(PeekStatus::wrong_protocol, "not a TLS handshake record")
                   : result(PeekStatus::malformed, "non-handshake record inside the ClientHello");
    }
    if (h[1] != 3 || h[2] > 4) return result(PeekStatus::malformed, "bad record version");
    std::size_t len = be16(h + 3);
    if (len == 0 || len > 16384) return result(PeekStatus::malformed, "bad record length");
    if (data.size() - at - 5 < len) break;  // record incomplete
    hs.insert(hs.end(), h + 5, h + 5 + len);
    at += 5 + len;
    first = false;
    if (hs.size() >= 4) {
      if (hs[0] != 1)
        return result(PeekStatus::malformed, "first handshake message is not a ClientHello");
      std::size_t hlen = be24(&hs[1]);
      if (hlen + 4 > cap) return result(PeekStatus::too_large, "ClientHello larger than the cap");
      if (hs.size() >= hlen + 4) return parse_hello_body({hs.data() + 4, hlen});
    }
  }
  if (data.size() >= cap)
    return result(PeekStatus::too_large, "no complete ClientHello within the cap");
  return result(PeekStatus::need_more);
}

namespace {

bool is_tchar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// host[:port] or [v6]:port -> normalised host, or nullopt.
std::optional<std::string> host_of_authority(std::string_view a) {
  if (a.empty()) return std::nullopt;
  if (a.front() == '[') {
    auto close = a.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    auto rest = a.substr(close + 1);
    if (!rest.empty() && (rest[0] != ':' || rest.size() == 1)) return std::nullopt;
    // An IPv6 literal: returned bare; only allow_cidrs can admit it.
    auto v6 = net::IpAddress::parse(a.substr(1, close - 1));
    if (!v6 || v6->family != AF_INET6) return std::nullopt;
    return v6->str();
  }
  auto colon = a.find(':');
  std::string_view host = a.substr(0, colon);
  if (colon != std::string_view::npos) {
    auto port = a.substr(colon + 1);
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return std::nullopt;
    }
  }
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);  // FQDN form
  return normalize_host(host);
}

}  // namespace

PeekResult parse_http_host(std::span<const std::uint8_t> data, std::size_t cap) {
  std::string_view s(reinterpret_cast<const char*>(data.data()), std::min(data.size(), cap));
  // Method: upper-case token then SP. Decide "not HTTP" as early as possible.
  std::size_t i = 0;
  while (i < s.size() && i < 20 && s[i] >= 'A' && s[i] <= 'Z') ++i;
  if (i == s.size())
    return data.size() >= cap ? result(PeekStatus::too_large) : result(PeekStatus::need_more);
  if (i == 0 || s[i] != ' ')
    return result(PeekStatus::wrong_protocol, "not an HTTP/1.x request line");
  std::string_view method = s.substr(0, i);
  auto head_end = s.find("\r\n\r\n");
  auto line_end = s.find("\r\n");
  // A LF without CR is read as a line end by some servers and not by others:
  // a smuggling vector, refused wherever it appears in the head.
  std::size_t scan_end = head_end == std::string_view::npos ? s.size() : head_end;
  for (std::size_t k = 0; k < scan_end; ++k) {
    if (s[k] == '\n' && (k == 0 || s[k - 1] != '\r'))
      return result(PeekStatus::malformed, "bare LF");
  }
  if (line_end == std::string_view::npos) {
    return data.size() >= cap ? result(PeekStatus::too_large, "request line longer than the cap")
                              : result(PeekStatus::need_more);
  }
  std::string_view line = s.substr(0, line_end);
  auto sp2 = line.rfind(' ');
  if (sp2 == i) return result(PeekStatus::wrong_protocol, "request line without a version");
  std::string_view target = line.substr(i + 1, sp2 - i - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    return result(PeekStatus::wrong_protocol, "not HTTP/1.0 or HTTP/1.1");
  }
  if (target.empty() || target.find(' ') != std::string_view::npos) {
    return result(PeekStatus::malformed, "bad request target");
  }
  if (method == "CONNECT")
    return result(PeekStatus::malformed, "CONNECT through the transparent proxy");
  if (head_end == std::string_view::npos) {
    return data.size() >= cap ? result(PeekStatus::too_large, "request head longer than the cap")
                              : result(PeekStatus::need_more);
  }
  std::optional<std::string> host;
  std::size_t pos = line_end + 2;
  while (pos < head_end + 2) {
    auto eol = s.find("\r\n", pos);
    std::string_view h = s.substr(pos, eol - pos);
    pos = eol + 2;
    if (h.empty()) break;
    if (h.find('\n') != std::string_view::npos || h.find('\r') != std::string_view::npos) {
      return result(PeekStatus::malformed, "bare CR or LF in a header");
    }
    if (h[0] == ' ' || h[0] == '\t')
      return result(PeekStatus::malformed, "obsolete header folding");
    auto colon = h.find(':');
    if (colon == std::string_view::npos || colon == 0)
      return result(PeekStatus::malformed, "header without a name");
    std::string_view name = h.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), is_tchar)) {
      return result(PeekStatus::malformed, "bad header name (space before the colon?)");
    }
    if (name.size() != 4 || !std::equal(name.begin(), name.end(), "host", [](char a, char b) {
          return (a >= 'A' && a <= 'Z' ? a - 'A' + 'a' : a) == b;
        })) {
      continue;
    }
    if (host) return result(PeekStatus::malformed, "two Host headers");
    std::string_view v = h.substr(colon + 1);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    auto n = host_of_authority(v);
    if (!n) return result(PeekStatus::malformed, "Host header is not a host name");
    host = std::move(*n);
  }
  // Absolute form ("GET http://x/ HTTP/1.1"): a server uses the URI's host,
  // so it must agree with the Host header we check.
  if (target.size() > 7 &&
      std::equal(target.begin(), target.begin() + 7, "http://",
                 [](char a, char b) { return (a >= 'A' && a <= 'Z' ? a - 'A' + 'a' : a) == b; })) {
    auto rest = target.substr(7);
    auto auth = host_of_authority(rest.substr(0, rest.find_first_of("/?#")));
    if (!auth) return result(PeekStatus::malformed, "bad absolute-form target");
    if (host && *host != *auth)
      return result(PeekStatus::malformed, "Host header and target disagree");
    if (!host) host = auth;
  } else if (target.front() != '/' && !(method == "OPTIONS" && target == "*")) {
    return result(PeekStatus::malformed, "request target is neither origin- nor absolute-form");
  }
  if (!host) return result(PeekStatus::no_name, "request without a Host header");
  PeekResult r = result(PeekStatus::found);
  r.name = std::move(*host);
  return r;
}

PeekResult Peeker::feed(std::span<const std::uint8_t> bytes) {
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
  switch (kind_) {
    case Inspection::tls:
      return parse_client_hello(buffer_, cap_);
    case Inspection::http:
      return parse_http_host(buffer_, cap_);
    case Inspection::opaque:
      break;
  }
  return result(PeekStatus::no_name, "opaque port: nothing to peek");
}

}  // namespace sbx::egress
