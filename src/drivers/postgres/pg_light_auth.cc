// The light client's password answers: md5 and SCRAM-SHA-256 (RFC
// 5802/7677), and base64. Hashes, HMAC, PBKDF2 and base64 come from nettle.
#include "drivers/postgres/pg_light.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nettle/base64.h>
#include <nettle/hmac.h>
#include <nettle/md5.h>
#include <nettle/pbkdf2.h>
#include <nettle/sha2.h>
#include <poll.h>
#include <pwd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "core/log.h"
#include "drivers/postgres/pg_error.h"
#include "drivers/postgres/pg_server_info.h"
#include "drivers/postgres/pg_session.h"
#include "drivers/postgres/pg_light_internal.h"

namespace ferry::postgres::light_internal {
namespace {

using Digest = std::array<uint8_t, 32>;

const uint8_t* Bytes(std::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }
std::string_view View(const Digest& d) {
  return std::string_view(reinterpret_cast<const char*>(d.data()), d.size());
}

Digest HmacSha256(std::string_view key, std::string_view data) {
  hmac_sha256_ctx ctx;
  hmac_sha256_set_key(&ctx, key.size(), Bytes(key));
  hmac_sha256_update(&ctx, data.size(), Bytes(data));
  Digest out;
  hmac_sha256_digest(&ctx, out.size(), out.data());
  return out;
}

Digest Sha256(std::string_view data) {
  sha256_ctx ctx;
  sha256_init(&ctx);
  sha256_update(&ctx, data.size(), Bytes(data));
  Digest out;
  sha256_digest(&ctx, out.size(), out.data());
  return out;
}

std::string Md5Hex(std::string_view data) {
  md5_ctx ctx;
  md5_init(&ctx);
  md5_update(&ctx, data.size(), Bytes(data));
  uint8_t digest[MD5_DIGEST_SIZE];
  md5_digest(&ctx, sizeof digest, digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : digest) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

// "a=1,b=2" attribute of SCRAM messages: the value of `name`, or nullopt.
std::optional<std::string_view> ScramAttribute(std::string_view message, char name) {
  while (!message.empty()) {
    size_t comma = message.find(',');
    std::string_view part = message.substr(0, comma);
    if (part.size() >= 2 && part[0] == name && part[1] == '=') return part.substr(2);
    if (comma == std::string_view::npos) break;
    message.remove_prefix(comma + 1);
  }
  return std::nullopt;
}

// SCRAM saslname: ',' -> "=2C", '=' -> "=3D".
std::string SaslName(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == ',') {
      out += "=2C";
    } else if (c == '=') {
      out += "=3D";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string Md5Response(std::string_view user, std::string_view password, std::string_view salt) {
  std::string inner = Md5Hex(std::string(password) + std::string(user));
  return "md5" + Md5Hex(inner + std::string(salt));
}

std::string Base64Encode(std::string_view data) {
  std::string out(BASE64_ENCODE_RAW_LENGTH(data.size()), '\0');
  base64_encode_raw(out.data(), data.size(), Bytes(data));
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  base64_decode_ctx ctx;
  base64_decode_init(&ctx);
  std::string out(BASE64_DECODE_LENGTH(text.size()), '\0');
  size_t length = out.size();
  if (base64_decode_update(&ctx, &length, reinterpret_cast<uint8_t*>(out.data()), text.size(),
                           text.data()) != 1 ||
      base64_decode_final(&ctx) != 1) {
    return std::nullopt;
  }
  out.resize(length);
  return out;
}

ScramSha256::ScramSha256(std::string password, std::string user, std::string client_nonce)
    : password_(std::move(password)),
      user_(std::move(user)),
      client_nonce_(std::move(client_nonce)) {}

std::string ScramSha256::ClientFirstMessage() const {
  return "n,,n=" + SaslName(user_) + ",r=" + client_nonce_;
}

Result<std::string> ScramSha256::ClientFinalMessage(std::string_view server_first) {
  auto bad = [](std::string_view what) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("SCRAM authentication: the server's first message {}", what));
  };
  if (server_first.starts_with("m=")) return bad("asks for an extension this client lacks");
  std::optional<std::string_view> nonce = ScramAttribute(server_first, 'r');
  std::optional<std::string_view> salt64 = ScramAttribute(server_first, 's');
  std::optional<std::string_view> iterations_text = ScramAttribute(server_first, 'i');
  if (!nonce || !salt64 || !iterations_text) return bad("lacks r=, s= or i=");
  if (!nonce->starts_with(client_nonce_) || nonce->size() <= client_nonce_.size()) {
    return bad("does not extend the client nonce");
  }
  std::optional<std::string> salt = Base64Decode(*salt64);
  if (!salt || salt->empty()) return bad("has a malformed salt");
  int iterations = 0;
  if (!ParseInt(*iterations_text, &iterations) || iterations < 1) {
    return bad("has an invalid iteration count");
  }
  Digest salted;
  pbkdf2_hmac_sha256(password_.size(), Bytes(password_), static_cast<unsigned>(iterations),
                     salt->size(), Bytes(*salt), salted.size(), salted.data());
  Digest client_key = HmacSha256(View(salted), "Client Key");
  Digest stored_key = Sha256(View(client_key));
  std::string without_proof = "c=" + Base64Encode("n,,") + ",r=" + std::string(*nonce);
  std::string client_first_bare = "n=" + SaslName(user_) + ",r=" + client_nonce_;
  std::string auth_message =
      client_first_bare + "," + std::string(server_first) + "," + without_proof;
  Digest client_signature = HmacSha256(View(stored_key), auth_message);
  Digest proof;
  for (size_t i = 0; i < proof.size(); ++i) proof[i] = client_key[i] ^ client_signature[i];
  Digest server_key = HmacSha256(View(salted), "Server Key");
  server_signature_ = HmacSha256(View(server_key), auth_message);
  have_signature_ = true;
  return without_proof + ",p=" + Base64Encode(View(proof));
}

Status ScramSha256::VerifyServerFinal(std::string_view server_final) const {
  if (auto error = ScramAttribute(server_final, 'e')) {
    return Status(StatusCode::kPermissionDenied,
                  fmt::format("SCRAM authentication failed: the server says '{}'", *error));
  }
  std::optional<std::string_view> v = ScramAttribute(server_final, 'v');
  std::optional<std::string> signature = v ? Base64Decode(*v) : std::nullopt;
  if (!have_signature_ || !signature || signature->size() != server_signature_.size()) {
    return Status(StatusCode::kPermissionDenied,
                  "SCRAM authentication: the server's final message has no valid signature");
  }
  uint8_t diff = 0;
  for (size_t i = 0; i < server_signature_.size(); ++i) {
    diff |= static_cast<uint8_t>(static_cast<uint8_t>((*signature)[i]) ^ server_signature_[i]);
  }
  if (diff != 0) {
    return Status(StatusCode::kPermissionDenied,
                  "SCRAM authentication: the server's signature is wrong, so it does not know the "
                  "password; something may stand between ferry and the server");
  }
  return Status();
}

}  // namespace ferry::postgres::light_internal
