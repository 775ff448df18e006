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
// The password never appears in Redacted() or ToString(); only the driver
// sees Raw().
#pragma once

#include <map>
#include <string>
#include <string_view>

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
  const std::map<std::string, std::string>& params() const { return params_; }
  bool has_password() const { return has_password_; }
  bool tls() const { return tls_; }
  // redis+cluster:// (or rediss+cluster://): host() is a seed-node list.
  bool redis_cluster() const { return redis_cluster_; }
  bool key_value_form() const { return key_value_; }

  // The text as given; contains the password. Hand only to a driver.
  const std::string& Raw() const { return raw_; }
  // The text with any password replaced by "***"; safe for logs and output.
  std::string Redacted() const;

 private:
  std::string raw_;
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

// Replaces every password found in free text (URL userinfo, password=...)
// with "***". Used on error messages that might echo a connection string.
std::string RedactSecrets(std::string_view text);

// Percent-decodes a URL component; invalid escapes are kept as-is.
std::string PercentDecode(std::string_view text);

}  // namespace ferry
