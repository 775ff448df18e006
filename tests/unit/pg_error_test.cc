// PostgreSQL error classification: SQLSTATEs and libpq connection messages.
#include "drivers/postgres/pg_error.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace ferry::postgres {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(CodeForSqlStateTest, ClassifiesByWhatTheCallerShouldDo) {
  struct Case {
    const char* sqlstate;
    StatusCode code;
  };
  const Case cases[] = {
      {"28P01", StatusCode::kPermissionDenied},  // invalid_password
      {"28000", StatusCode::kPermissionDenied},  // invalid_authorization_specification
      {"42501", StatusCode::kPermissionDenied},  // insufficient_privilege
      {"08006", StatusCode::kUnavailable},       // connection_failure
      {"08001", StatusCode::kUnavailable},
      {"57P01", StatusCode::kUnavailable},         // admin_shutdown
      {"57P02", StatusCode::kUnavailable},         // crash_shutdown
      {"57P03", StatusCode::kUnavailable},         // cannot_connect_now
      {"53300", StatusCode::kUnavailable},         // too_many_connections
      {"40001", StatusCode::kAborted},             // serialization_failure
      {"40P01", StatusCode::kAborted},             // deadlock_detected
      {"25P02", StatusCode::kAborted},             // in_failed_sql_transaction
      {"55P03", StatusCode::kDeadlineExceeded},    // lock_not_available
      {"3D000", StatusCode::kNotFound},            // invalid_catalog_name
      {"42P01", StatusCode::kNotFound},            // undefined_table
      {"42P07", StatusCode::kAlreadyExists},       // duplicate_table
      {"42710", StatusCode::kAlreadyExists},       // duplicate_object
      {"42601", StatusCode::kInvalidArgument},     // syntax_error
      {"42703", StatusCode::kInvalidArgument},     // undefined_column
      {"22012", StatusCode::kInvalidArgument},     // division_by_zero
      {"22P02", StatusCode::kInvalidArgument},     // invalid_text_representation
      {"23505", StatusCode::kInvalidArgument},     // unique_violation
      {"23503", StatusCode::kInvalidArgument},     // foreign_key_violation
      {"25006", StatusCode::kFailedPrecondition},  // read_only_sql_transaction
      {"XX000", StatusCode::kUnknown},             // internal_error
      {"P0001", StatusCode::kUnknown},             // raise_exception
      {"", StatusCode::kUnknown},
      {"4", StatusCode::kUnknown},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(CodeForSqlState(c.sqlstate), c.code) << "sqlstate '" << c.sqlstate << "'";
  }
}

TEST(CodeForSqlStateTest, QueryCanceledDependsOnTheCause) {
  EXPECT_EQ(CodeForSqlState("57014", "canceling statement due to statement timeout"),
            StatusCode::kDeadlineExceeded);
  EXPECT_EQ(CodeForSqlState("57014", "canceling statement due to lock timeout"),
            StatusCode::kDeadlineExceeded);
  EXPECT_EQ(CodeForSqlState("57014", "canceling statement due to user request"),
            StatusCode::kCancelled);
  EXPECT_EQ(CodeForSqlState("57014"), StatusCode::kCancelled);
}

TEST(CodeForConnectMessageTest, ClassifiesLibpqMessages) {
  struct Case {
    const char* message;
    StatusCode code;
  };
  const Case cases[] = {
      {"connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  password "
       "authentication failed for user \"app\"\n",
       StatusCode::kPermissionDenied},
      {"connection to server at \"db\" (10.0.0.5), port 5432 failed: fe_sendauth: no password "
       "supplied\n",
       StatusCode::kPermissionDenied},
      {"connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  no pg_hba.conf entry "
       "for host \"127.0.0.1\", user \"app\", database \"app\", no encryption\n",
       StatusCode::kPermissionDenied},
      {"connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  role \"nobody\" does not "
       "exist\n",
       StatusCode::kPermissionDenied},
      {"connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  permission denied for "
       "database \"app\"\nDETAIL:  User does not have CONNECT privilege.\n",
       StatusCode::kPermissionDenied},
      {"connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  database \"nope\" does "
       "not exist\n",
       StatusCode::kNotFound},
      {"connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\tIs the server "
       "running on that host and accepting TCP/IP connections?\n",
       StatusCode::kUnavailable},
      {"could not translate host name \"nohost\" to address: Name or service not known\n",
       StatusCode::kUnavailable},
      {"connection to server at \"10.255.255.1\", port 5432 failed: timeout expired\n",
       StatusCode::kUnavailable},
      {"connection to server on socket \"/run/postgresql/.s.PGSQL.5432\" failed: No such file or "
       "directory\n\tIs the server running locally and accepting connections on that socket?\n",
       StatusCode::kUnavailable},
      {"connection to server at \"10.1.1.1\", port 5432 failed: Network is unreachable\n",
       StatusCode::kUnavailable},
      {"connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  sorry, too many clients "
       "already\n",
       StatusCode::kUnavailable},
      {"connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  the database system is "
       "starting up\n",
       StatusCode::kUnavailable},
      {"invalid connection option \"bogus\"\n", StatusCode::kInvalidArgument},
      {"invalid URI query parameter: \"bogus\"\n", StatusCode::kInvalidArgument},
      {"missing \"=\" after \"oops\" in connection info string\n", StatusCode::kInvalidArgument},
      {"something nobody has seen before\n", StatusCode::kUnavailable},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(CodeForConnectMessage(c.message), c.code) << c.message;
  }
}

ConnectTarget Target() {
  return ConnectTarget{"postgres://app:***@db.example:6543/shop", "db.example", "6543", "shop",
                       "app"};
}

TEST(ConnectErrorTest, RefusedNamesUrlAndWhatToTry) {
  Status s = ConnectError(
      "connection to server at \"db.example\" (10.0.0.5), port 6543 failed: Connection refused\n"
      "\tIs the server running on that host and accepting TCP/IP connections?\n",
      Target());
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("postgres://app:***@db.example:6543/shop"));
  EXPECT_THAT(s.message(), HasSubstr("Connection refused"));
  EXPECT_THAT(s.message(), HasSubstr("is the server running on db.example:6543?"));
  EXPECT_THAT(s.message(), HasSubstr("--database"));
  EXPECT_THAT(s.message(), Not(HasSubstr("\n")));
  EXPECT_THAT(s.message(), Not(HasSubstr("\t")));
  EXPECT_EQ(s.Get("url"), "postgres://app:***@db.example:6543/shop");
}

TEST(ConnectErrorTest, AuthenticationSuggestsCredentials) {
  Status s = ConnectError(
      "connection to server at \"db.example\", port 6543 failed: FATAL:  password authentication "
      "failed for user \"app\"\n",
      Target());
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(), HasSubstr("check the user and password"));
  EXPECT_THAT(s.message(), HasSubstr(".pgpass"));
  EXPECT_THAT(s.message(), Not(HasSubstr("FATAL")));

  Status role = ConnectError("FATAL:  role \"ghost\" does not exist\n", Target());
  EXPECT_EQ(role.code(), StatusCode::kPermissionDenied);
  EXPECT_THAT(role.message(), HasSubstr("CREATE ROLE \"ghost\" LOGIN"));
}

TEST(ConnectErrorTest, MissingDatabaseSuggestsCreatedb) {
  Status s = ConnectError(
      "connection to server at \"db.example\", port 6543 failed: FATAL:  database \"shop\" does "
      "not exist\n",
      Target());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("createdb -h db.example -p 6543 -U app shop"));
}

TEST(ConnectErrorTest, NeverShowsAPassword) {
  ConnectTarget target = Target();
  target.redacted_url = "postgres://app:hunter2@db.example:6543/shop";  // caller forgot to redact
  Status s = ConnectError(
      "invalid URI query parameter in \"postgres://app:hunter2@db.example/shop?x=1\" "
      "password=hunter2\n",
      target);
  EXPECT_THAT(s.ToString(), Not(HasSubstr("hunter2")));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
}

TEST(ConnectErrorTest, TimeoutAndUnknownHostHints) {
  Status timeout = ConnectError("timeout expired\n", Target());
  EXPECT_EQ(timeout.code(), StatusCode::kUnavailable);
  EXPECT_THAT(timeout.message(), HasSubstr("connect_timeout"));
  Status host = ConnectError(
      "could not translate host name \"db.example\" to address: Name or service not known\n",
      Target());
  EXPECT_EQ(host.code(), StatusCode::kUnavailable);
  EXPECT_THAT(host.message(), HasSubstr("check the host name 'db.example'"));
}

TEST(CleanMessageTest, FoldsLinesAndStripsSeverity) {
  EXPECT_EQ(CleanMessage("connection to server at \"h\", port 1 failed: FATAL:  the database "
                         "system is shutting down\n\tmore\n"),
            "connection to server at \"h\", port 1 failed: the database system is shutting down "
            "more");
  EXPECT_EQ(CleanMessage("ERROR:  syntax error at or near \"SELEC\"\nLINE 1: SELEC 1\n"),
            "syntax error at or near \"SELEC\" LINE 1: SELEC 1");
  EXPECT_EQ(CleanMessage(""), "");
}

TEST(ErrorFromResultTest, NullResultIsInternal) {
  Status s = ErrorFromResult(nullptr, "SELECT 1");
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.Get("statement"), "SELECT 1");
}

}  // namespace
}  // namespace ferry::postgres
