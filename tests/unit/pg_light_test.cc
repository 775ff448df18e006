// The light PostgreSQL client's pure parts: which URLs and environments it
// takes, the password responses it computes, and how it reads messages.
// The protocol against a real server is in tests/integration/pg_light_test.cc.
#include "drivers/postgres/pg_light.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <string>
#include <thread>

#include "core/url.h"

namespace ferry::postgres {
namespace {

using light_internal::ResolveTarget;
using light_internal::ScramSha256;
using light_internal::SslMode;
using light_internal::Target;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::string_literals;

// A fake environment: only the variables a test sets exist.
class Env {
 public:
  Env& Set(const std::string& name, const std::string& value) {
    vars_[name] = value;
    return *this;
  }
  GetenvFunction Getenv() const {
    return [this](const char* name) -> const char* {
      auto it = vars_.find(name);
      return it == vars_.end() ? nullptr : it->second.c_str();
    };
  }

 private:
  std::map<std::string, std::string> vars_;
};

bool NoFiles(const std::string&) { return false; }

Url Parse(const std::string& text) {
  auto url = Url::Parse(text);
  EXPECT_TRUE(url.ok()) << url.status().ToString();
  return url.ok() ? *url : Url();
}

// The reason the URL needs libpq, or "" when the light client takes it.
std::string Why(const std::string& url, const Env& env = Env(),
                const std::function<bool(const std::string&)>& files = &NoFiles) {
  auto target = ResolveTarget(Parse(url), env.Getenv(), files, "osuser", ConnectOptions());
  if (target.ok()) return "";
  EXPECT_EQ(target.status().code(), StatusCode::kUnimplemented);
  return target.status().message();
}

Target Resolve(const std::string& url, const Env& env = Env(),
               const ConnectOptions& options = ConnectOptions()) {
  auto target = ResolveTarget(Parse(url), env.Getenv(), &NoFiles, "osuser", options);
  EXPECT_TRUE(target.ok()) << target.status().ToString();
  return target.ok() ? *target : Target();
}

TEST(PgLightEligibility, PlainUrlsAreTaken) {
  EXPECT_EQ(Why("postgres://app@db.example:6543/shop"), "");
  EXPECT_EQ(Why("postgresql://app:pw@127.0.0.1/shop?sslmode=disable&connect_timeout=3"), "");
  EXPECT_EQ(Why("postgres://%2Fvar%2Frun%2Fpostgresql/shop"), "");
  EXPECT_EQ(Why("postgres:///shop?host=/tmp/sock&application_name=x&client_encoding=UTF8"), "");
  EXPECT_EQ(Why("postgres://[::1]:5432/shop?gssencmode=disable&sslmode=allow"), "");
}

TEST(PgLightEligibility, EachReasonIsNamed) {
  EXPECT_THAT(Why("host=localhost dbname=x"), HasSubstr("key=value"));
  EXPECT_THAT(Why("postgres://h1:5432,h2:5433/db"), HasSubstr("several hosts"));
  EXPECT_THAT(Why("postgres://h/db?target_session_attrs=read-write"),
              HasSubstr("'target_session_attrs'"));
  EXPECT_THAT(Why("postgres://h/db?passfile=/x"), HasSubstr("'passfile'"));
  EXPECT_THAT(Why("postgres://h/db?sslmode=require"), HasSubstr("sslmode=require"));
  EXPECT_THAT(Why("postgres://h/db?sslmode=verify-full"), HasSubstr("TLS"));
  EXPECT_THAT(Why("postgres://h/db?gssencmode=prefer"), HasSubstr("gssencmode=prefer"));
  EXPECT_THAT(Why("postgres://h/db?client_encoding=LATIN1"), HasSubstr("LATIN1"));
  EXPECT_THAT(Why("postgres:///db"), HasSubstr("no host"));
  EXPECT_THAT(Why("postgres://h/db?connect_timeout=soon"), HasSubstr("connect_timeout"));
  EXPECT_THAT(Why("postgres://h/db?port=0"), HasSubstr("port"));
}

TEST(PgLightEligibility, EnvironmentThatOnlyLibpqReads) {
  for (const char* name : {"PGSERVICE", "PGSERVICEFILE", "PGOPTIONS", "PGHOSTADDR", "PGREQUIRESSL",
                           "PGTARGETSESSIONATTRS", "PGLOADBALANCEHOSTS", "PGDATESTYLE", "PGTZ",
                           "PGGEQO", "PGREQUIREAUTH", "PGSSLNEGOTIATION"}) {
    SCOPED_TRACE(name);
    EXPECT_THAT(Why("postgres://h/db", Env().Set(name, "x")), HasSubstr(name));
  }
  EXPECT_THAT(Why("postgres://h/db", Env().Set("PGGSSENCMODE", "prefer")),
              HasSubstr("PGGSSENCMODE"));
  EXPECT_EQ(Why("postgres://h/db", Env().Set("PGGSSENCMODE", "disable")), "");
  EXPECT_THAT(Why("postgres://h/db", Env().Set("PGCLIENTENCODING", "SQL_ASCII")),
              HasSubstr("PGCLIENTENCODING"));
  EXPECT_EQ(Why("postgres://h/db", Env().Set("PGCLIENTENCODING", "UTF8")), "");
  EXPECT_THAT(Why("postgres://h/db", Env().Set("PGCHANNELBINDING", "require")),
              HasSubstr("PGCHANNELBINDING"));
  EXPECT_EQ(Why("postgres://h/db", Env().Set("PGCHANNELBINDING", "prefer")), "");
  EXPECT_THAT(Why("postgres://h/db", Env().Set("PGSSLMODE", "verify-ca")), HasSubstr("PGSSLMODE"));
  // The URL's sslmode wins over PGSSLMODE, as in libpq.
  EXPECT_EQ(Why("postgres://h/db?sslmode=disable", Env().Set("PGSSLMODE", "require")), "");
  EXPECT_THAT(Why("postgres:///db", Env().Set("PGHOST", "a,b")), HasSubstr("several hosts"));
}

TEST(PgLightEligibility, KerberosCredentialsMeanGssEncryption) {
  EXPECT_THAT(Why("postgres://h/db", Env().Set("KRB5CCNAME", "FILE:/tmp/x")),
              HasSubstr("KRB5CCNAME"));
  std::string asked;
  auto cache_exists = [&asked](const std::string& path) {
    asked = path;
    return true;
  };
  EXPECT_THAT(Why("postgres://h/db", Env(), cache_exists), HasSubstr("/tmp/krb5cc_"));
  EXPECT_EQ(asked, "/tmp/krb5cc_" + std::to_string(geteuid()));
  // With GSS encryption off, credentials do not matter.
  EXPECT_EQ(Why("postgres://h/db?gssencmode=disable", Env().Set("KRB5CCNAME", "x"), cache_exists),
            "");
}

TEST(PgLightEligibility, PublicFunctionAgreesWithResolve) {
  Env env;
  EXPECT_EQ(LightIneligible(Parse("postgres://u@h:1/d?gssencmode=disable"), env.Getenv()),
            std::nullopt);
  auto why = LightIneligible(Parse("postgres://u@h:1/d?sslmode=require"), env.Getenv());
  ASSERT_TRUE(why.has_value());
  EXPECT_THAT(*why, HasSubstr("sslmode=require"));
}

TEST(PgLightTarget, UrlThenEnvironmentThenDefaults) {
  Target t = Resolve("postgres://al%40ice:p%3Ass@db.example:6543/sh%2Fop?application_name=app");
  EXPECT_EQ(t.host, "db.example");
  EXPECT_EQ(t.port, 6543);
  EXPECT_EQ(t.user, "al@ice");
  EXPECT_EQ(t.password, "p:ss");
  EXPECT_EQ(t.database, "sh/op");
  EXPECT_EQ(t.application_name, "app");
  EXPECT_EQ(t.ssl_mode, SslMode::kPrefer);
  EXPECT_EQ(t.connect_timeout_seconds, 10);  // ConnectOptions' default
  EXPECT_FALSE(t.unix_socket());

  Env env;
  env.Set("PGHOST", "/run/pg")
      .Set("PGPORT", "5433")
      .Set("PGUSER", "envuser")
      .Set("PGPASSWORD", "envpw")
      .Set("PGDATABASE", "envdb")
      .Set("PGAPPNAME", "envapp")
      .Set("PGCONNECT_TIMEOUT", "1")
      .Set("PGSSLMODE", "disable");
  t = Resolve("postgres://", env);
  EXPECT_EQ(t.host, "/run/pg");
  EXPECT_TRUE(t.unix_socket());
  EXPECT_EQ(t.SocketPath(), "/run/pg/.s.PGSQL.5433");
  EXPECT_EQ(t.user, "envuser");
  EXPECT_EQ(t.password, "envpw");
  EXPECT_EQ(t.database, "envdb");
  EXPECT_EQ(t.application_name, "envapp");
  EXPECT_EQ(t.connect_timeout_seconds, 2);  // libpq's minimum
  EXPECT_EQ(t.ssl_mode, SslMode::kDisable);

  // The URL overrides the environment; query parameters override the URL.
  t = Resolve("postgres://u:pw@h:1/d?port=2&user=q&dbname=e&password=qp", env);
  EXPECT_EQ(t.host, "h");
  EXPECT_EQ(t.port, 2);
  EXPECT_EQ(t.user, "q");
  EXPECT_EQ(t.password, "qp");
  EXPECT_EQ(t.database, "e");

  // Nothing given: the OS user, a database of the same name, no password.
  ConnectOptions options;
  options.application_name = "ferry-test";
  options.connect_timeout = std::chrono::seconds(0);
  t = Resolve("postgres://h", Env(), options);
  EXPECT_EQ(t.port, 5432);
  EXPECT_EQ(t.user, "osuser");
  EXPECT_EQ(t.database, "osuser");
  EXPECT_EQ(t.password, std::nullopt);
  EXPECT_EQ(t.application_name, "ferry-test");
  EXPECT_EQ(t.connect_timeout_seconds, 0);
  // fallback_application_name is used only when nothing else names the app.
  EXPECT_EQ(Resolve("postgres://h?fallback_application_name=fb").application_name, "fb");
  EXPECT_EQ(Resolve("postgres://h?fallback_application_name=fb", Env().Set("PGAPPNAME", "e"))
                .application_name,
            "e");
  // An empty password is no password (libpq then reads ~/.pgpass).
  EXPECT_EQ(Resolve("postgres://u:@h/d").password, std::nullopt);
}

// RFC 7677 section 3: user "user", password "pencil", fixed nonces.
TEST(PgLightScram, Rfc7677ExampleExchange) {
  ScramSha256 scram("pencil", "user", "rOprNGfwEbeRWgbNEkqO");
  EXPECT_EQ(scram.ClientFirstMessage(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
  auto final_message = scram.ClientFinalMessage(
      "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
  ASSERT_TRUE(final_message.ok()) << final_message.status().ToString();
  EXPECT_EQ(*final_message,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
            "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
  EXPECT_TRUE(scram.VerifyServerFinal("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").ok());
  // One bit off in the server's signature: refused, not accepted.
  Status wrong = scram.VerifyServerFinal("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G5=");
  EXPECT_EQ(wrong.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(scram.VerifyServerFinal("e=invalid-proof").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(scram.VerifyServerFinal("v=bm90IGJhc2U2NA").code(), StatusCode::kPermissionDenied);
}

TEST(PgLightScram, RejectsBadServerFirstMessages) {
  ScramSha256 scram("pencil", "", "abc");
  EXPECT_FALSE(scram.ClientFinalMessage("r=xyz123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096").ok())
      << "a nonce that does not extend ours";
  EXPECT_FALSE(scram.ClientFinalMessage("r=abc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096").ok())
      << "a nonce with nothing of the server's";
  EXPECT_FALSE(scram.ClientFinalMessage("r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0").ok());
  EXPECT_FALSE(scram.ClientFinalMessage("r=abcdef,i=4096").ok());
  EXPECT_FALSE(scram.ClientFinalMessage("m=ext,r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1").ok());
  // Without a client-final message there is nothing to verify against.
  EXPECT_EQ(scram.VerifyServerFinal("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").code(),
            StatusCode::kPermissionDenied);
}

TEST(PgLightMd5, ResponseIsMd5OfMd5PasswordUserAndSalt) {
  // Expected value computed independently with Python's hashlib:
  //   "md5" + md5(md5(password + user).hexdigest() + salt).hexdigest()
  EXPECT_EQ(light_internal::Md5Response("ferry_md5", "ferry_md5_secret",
                                        std::string("\x9a\x01\xff\x20", 4)),
            "md5c26355db50cb3a979138558c0f9860db");
  // Salt and user both matter.
  EXPECT_NE(light_internal::Md5Response("ferry_md5", "ferry_md5_secret", "abcd"),
            light_internal::Md5Response("ferry_md5", "ferry_md5_secret", "abce"));
  EXPECT_NE(light_internal::Md5Response("a", "pw", "abcd"),
            light_internal::Md5Response("b", "pw", "abcd"));
}

TEST(PgLightBase64, RoundTripsAndRejectsGarbage) {
  EXPECT_EQ(light_internal::Base64Encode("n,,"), "biws");
  EXPECT_EQ(light_internal::Base64Encode(""), "");
  std::string bytes("\x00\xff\x10 binary", 10);
  EXPECT_EQ(light_internal::Base64Decode(light_internal::Base64Encode(bytes)), bytes);
  EXPECT_EQ(light_internal::Base64Decode("not*base64"), std::nullopt);
}

// DataRow body: int16 count, then per field int32 length (-1 = NULL) + bytes.
std::string Int32(int32_t v) {
  uint32_t u = static_cast<uint32_t>(v);
  return {static_cast<char>(u >> 24), static_cast<char>((u >> 16) & 0xFF),
          static_cast<char>((u >> 8) & 0xFF), static_cast<char>(u & 0xFF)};
}

TEST(PgLightFraming, DataRowWithNullsAndEmptyValues) {
  std::string body = std::string("\x00\x04", 2) + Int32(3) + "abc" + Int32(-1) + Int32(0) +
                     Int32(2) + std::string("\x00\x01", 2);
  std::vector<std::optional<std::string_view>> fields;
  ASSERT_TRUE(light_internal::ParseDataRow(body, &fields).ok());
  ASSERT_EQ(fields.size(), 4u);
  EXPECT_EQ(fields[0], "abc");
  EXPECT_EQ(fields[1], std::nullopt);
  EXPECT_EQ(fields[2], "");  // empty is not NULL
  EXPECT_EQ(fields[3], std::string_view("\x00\x01", 2));

  // Truncated, over-long, trailing bytes and negative lengths are refused.
  EXPECT_FALSE(light_internal::ParseDataRow(body.substr(0, body.size() - 1), &fields).ok());
  EXPECT_FALSE(light_internal::ParseDataRow(body + "x", &fields).ok());
  EXPECT_FALSE(light_internal::ParseDataRow(std::string("\x00\x01", 2) + Int32(-2), &fields).ok());
  EXPECT_FALSE(light_internal::ParseDataRow(std::string("\x00", 1), &fields).ok());
  EXPECT_TRUE(light_internal::ParseDataRow(std::string("\x00\x00", 2), &fields).ok());
  EXPECT_TRUE(fields.empty());
}

TEST(PgLightFraming, RowsFromCommandTags) {
  EXPECT_EQ(light_internal::RowsFromTag("INSERT 0 5", -1), 5);
  EXPECT_EQ(light_internal::RowsFromTag("UPDATE 2", -1), 2);
  EXPECT_EQ(light_internal::RowsFromTag("DELETE 0", -1), 0);
  EXPECT_EQ(light_internal::RowsFromTag("SELECT 12", -1), 12);
  EXPECT_EQ(light_internal::RowsFromTag("MERGE 3", -1), 3);
  EXPECT_EQ(light_internal::RowsFromTag("COPY 7", -1), 7);
  EXPECT_EQ(light_internal::RowsFromTag("CREATE TABLE", 4), 4);
  EXPECT_EQ(light_internal::RowsFromTag("BEGIN", 0), 0);
  EXPECT_EQ(light_internal::RowsFromTag("SELECT x", 9), 9);
}

}  // namespace
}  // namespace ferry::postgres

// ---- Start-up against a scripted fake server on loopback -----------------
// Only what a real test server cannot show: a server that offers TLS or
// Kerberos, or one that does not know the password.
namespace ferry::postgres {
namespace {

class FakeServer {
 public:
  // `script` runs on the accepted connection (its fd) in a thread.
  explicit FakeServer(std::function<void(int fd)> script) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 1) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot listen on loopback";
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, script = std::move(script)] {
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      script(fd);
      ::close(fd);
    });
  }
  ~FakeServer() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    ::close(listen_fd_);
  }
  std::string Url(const std::string& query) const {
    return "postgres://u:pencil@127.0.0.1:" + std::to_string(port_) + "/db?" + query;
  }

  // Reads exactly n bytes ("" on EOF).
  static std::string ReadN(int fd, size_t n) {
    std::string out(n, '\0');
    size_t got = 0;
    while (got < n) {
      ssize_t r = ::read(fd, out.data() + got, n - got);
      if (r <= 0) return "";
      got += static_cast<size_t>(r);
    }
    return out;
  }
  static uint32_t U32(std::string_view b) {
    return (uint32_t{static_cast<uint8_t>(b[0])} << 24) |
           (uint32_t{static_cast<uint8_t>(b[1])} << 16) |
           (uint32_t{static_cast<uint8_t>(b[2])} << 8) | uint32_t{static_cast<uint8_t>(b[3])};
  }
  // The start-up packet (no type byte); its body.
  static std::string ReadStartup(int fd) {
    std::string len = ReadN(fd, 4);
    return len.empty() ? "" : ReadN(fd, U32(len) - 4);
  }
  // One typed message; its body.
  static std::string ReadMessage(int fd, char* type) {
    std::string head = ReadN(fd, 5);
    if (head.empty()) return "";
    *type = head[0];
    return ReadN(fd, U32(head.substr(1)) - 4);
  }
  static void Send(int fd, std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      data.remove_prefix(static_cast<size_t>(n));
    }
  }
  static void SendAuth(int fd, int32_t code, std::string_view payload = "") {
    Send(fd, "R" + Int32(static_cast<int32_t>(8 + payload.size())) + Int32(code) +
                 std::string(payload));
  }

 private:
  int listen_fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

Result<std::unique_ptr<Connection>> OpenUrl(const std::string& url) {
  FERRY_ASSIGN_OR_RETURN(Url parsed, Url::Parse(url));
  return OpenLight(parsed, ConnectOptions());
}

TEST(PgLightStartup, ServerOfferingTlsIsLeftToLibpq) {
  std::string request;
  FakeServer server([&request](int fd) {
    request = FakeServer::ReadN(fd, 8);
    FakeServer::Send(fd, "S");
  });
  auto r = OpenUrl(server.Url("gssencmode=disable"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented) << r.status().ToString();
  EXPECT_THAT(r.status().message(), HasSubstr("TLS"));
  EXPECT_EQ(request, Int32(8) + Int32(80877103));  // SSLRequest
}

TEST(PgLightStartup, StartupPacketAndUnsupportedMethods) {
  for (int32_t code : {2, 7, 9}) {
    SCOPED_TRACE(code);
    std::string startup;
    FakeServer server([&startup, code](int fd) {
      startup = FakeServer::ReadStartup(fd);
      FakeServer::SendAuth(fd, code);
    });
    auto r = OpenUrl(server.Url("sslmode=disable&gssencmode=disable&application_name=app"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented) << r.status().ToString();
    EXPECT_EQ(startup, Int32(3 << 16) + "user\0u\0database\0db\0"s +
                           "application_name\0app\0client_encoding\0UTF8\0\0"s);
  }
  // SASL with only the channel-binding variant (needs TLS).
  FakeServer plus([](int fd) {
    FakeServer::ReadStartup(fd);
    FakeServer::SendAuth(fd, 10, "SCRAM-SHA-256-PLUS\0\0"s);
  });
  auto r = OpenUrl(plus.Url("sslmode=disable&gssencmode=disable"));
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented) << r.status().ToString();
}

TEST(PgLightStartup, ServerThatCannotProveThePasswordIsRefused) {
  // mode 0: a wrong signature; mode 1: AuthenticationOk without SASLFinal.
  for (int mode : {0, 1}) {
    SCOPED_TRACE(mode);
    std::string client_first;
    std::string client_final;
    FakeServer server([&, mode](int fd) {
      FakeServer::ReadStartup(fd);
      FakeServer::SendAuth(fd, 10, "SCRAM-SHA-256\0\0"s);
      char type = 0;
      std::string initial = FakeServer::ReadMessage(fd, &type);  // mechanism\0 int32 data
      size_t nul = initial.find('\0');
      client_first = initial.substr(nul + 5);
      std::string nonce = client_first.substr(client_first.find(",r=") + 3);
      FakeServer::SendAuth(fd, 11, "r=" + nonce + "srv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
      client_final = FakeServer::ReadMessage(fd, &type);
      if (mode == 0) {
        FakeServer::SendAuth(fd, 12, "v=" + light_internal::Base64Encode(std::string(32, 'x')));
      }
      FakeServer::SendAuth(fd, 0);
      FakeServer::Send(fd, "Z" + Int32(5) + "I");
    });
    auto r = OpenUrl(server.Url("sslmode=disable&gssencmode=disable"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied) << r.status().ToString();
    EXPECT_THAT(r.status().ToString(), Not(HasSubstr("pencil")));
    EXPECT_THAT(client_first, ::testing::StartsWith("n,,n=,r="));
    EXPECT_THAT(client_final, ::testing::StartsWith("c=biws,r="));
    EXPECT_THAT(client_final, HasSubstr(",p="));
  }
}

TEST(PgLightStartup, ServerClosingDuringStartupIsUnavailable) {
  FakeServer server([](int fd) { FakeServer::ReadStartup(fd); });
  auto r = OpenUrl(server.Url("sslmode=disable&gssencmode=disable"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_THAT(r.status().message(), HasSubstr("***"));
  EXPECT_THAT(r.status().ToString(), Not(HasSubstr("pencil")));
}

}  // namespace
}  // namespace ferry::postgres
