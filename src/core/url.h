// Database URLs: parsing, the engine they name, and redaction.
//
// Accepted forms:
//   postgres://user:pass@host:5432/db?sslmode=disable   (also postgresql://)
//   host=localhost dbname=app user=me password=secret   (libpq key=value)
//   sqlite:relative/path.db   sqlite:///abs/path.db   sqlite::memory:
//   a bare path ending in .db, .sqlite or .sqlite3 (treated as sqlite:)
//   redis://[:pass@]host:6379/0   rediss://...
//   redis+cluster://[user:pass@]h1:p1,h2:p2,...   (seed nodes of a Redis Cluster;
//                          host() keeps the list as given, database() is "0")
//   cql://user:pass@host1:9042,host2:9042/keyspace?consistency=LOCAL_QUORUM
//     (also scylla://, cassandra://; scheme() is "cql", host() keeps the list)
//
// Secrets are separated at parse time. The password (URL userinfo, a
// `password=` query parameter or key=value pair) and libpq's `sslpassword`
// go into Secret fields (core/secret.h) and are cut out of every text the
// Url keeps: Redacted() (display, JSON, errors, files, control tables) and
// ConnectionText() (the URL without secrets, for a client library) never
// hold them, and params() never lists them. A driver obtains the secrets
// only through password() / ssl_password() and Secret::Reveal(), at the
// moment it connects.
//
// Userinfo is read as libpq reads it, so '?', '#' and '@' may appear raw in
// a password; a raw '/' cannot (write %2F). Parse errors never echo the text.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "core/secret.h"
#include "ferry/status.h"

namespace ferry {

class Url {
 public:
  static Result<Url> Parse(std::string_view text);

  // "postgres", "sqlite" or "redis" (postgresql:// maps to "postgres",
  // rediss:// to "redis" with tls() true).
  const std::string& scheme() const { return scheme_; }
  const std::string& user() const { return user_; }
  const std::string& host() const { return host_; }
  int port() const { return port_; }  // 0 when not given
  // Database name (postgres), file path (sqlite) or db index (redis).
  const std::string& database() const { return database_; }
  // Query parameters (URL form) or other keywords (key=value form); never
  // password or sslpassword.
  const std::map<std::string, std::string>& params() const { return params_; }
  bool has_password() const { return has_password_; }
  bool tls() const { return tls_; }
  // redis+cluster:// (or rediss+cluster://): host() is a seed-node list.
  bool redis_cluster() const { return redis_cluster_; }
  bool key_value_form() const { return key_value_; }

  // The password (userinfo, percent-decoded; or the password parameter);
  // empty when none was given. For the driver that connects.
  const Secret& password() const { return password_; }
  // libpq's sslpassword (the client key's pass phrase); empty when none.
  const Secret& ssl_password() const { return ssl_password_; }

  // The text as given with every secret cut out ("postgres://app@h/db",
  // "host=h user=app"): hand it to a client library together with
  // password() and ssl_password().
  const std::string& ConnectionText() const { return connection_text_; }
  // The text with each secret shown as "***"; safe for logs and output.
  const std::string& Redacted() const { return redacted_; }

 private:
  std::string connection_text_;
  std::string redacted_;
  Secret password_;
  Secret ssl_password_;
  std::string scheme_;
  std::string user_;
  std::string host_;
  int port_ = 0;
  std::string database_;
  std::map<std::string, std::string> params_;
  bool has_password_ = false;
  bool tls_ = false;
  bool redis_cluster_ = false;
  bool key_value_ = false;
};

// Replaces every password found in free text (URL userinfo, password=...,
// sslpassword=...) with "***". Defence in depth for text ferry did not
// build itself (server and libpq messages); Url never needs it.
std::string RedactSecrets(std::string_view text);

// Percent-decodes a URL component; invalid escapes are kept as-is.
std::string PercentDecode(std::string_view text);

}  // namespace ferry
