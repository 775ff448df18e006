// Private declarations shared by the light PostgreSQL client's files
// (pg_light.cc: queries; pg_light_wire.cc: socket and messages;
// pg_light_startup.cc: connect, TLS refusal, start-up and authentication;
// pg_light_target.cc: URL and environment; pg_light_auth.cc: md5 and SCRAM).
// Not part of the library's API.
#pragma once

#include <sys/socket.h>

#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/numbers.h"
#include "drivers/postgres/pg_error.h"
#include "drivers/postgres/pg_light.h"
#include "drivers/postgres/pg_server_info.h"
#include "drivers/postgres/pg_session.h"

namespace ferry::postgres::light_internal {

using Clock = std::chrono::steady_clock;
using Deadline = std::optional<Clock::time_point>;

inline constexpr int32_t kProtocolVersion3 = 3 << 16;
inline constexpr int32_t kSslRequestCode = 80877103;
inline constexpr int32_t kCancelRequestCode = 80877102;
inline constexpr size_t kMaxParams = 65535;
inline constexpr size_t kReadBufferSize = 64 * 1024;
// The server never sends a message this large (its own limit is 1 GB).
inline constexpr uint32_t kMaxMessageLength = (1u << 30) + 1024;

// An int, surrounding spaces allowed (as libpq reads settings).
inline bool ParseInt(std::string_view text, int* out) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  std::optional<int64_t> v = ParseInt64(text);
  if (!v || *v < INT32_MIN || *v > INT32_MAX) return false;
  *out = static_cast<int>(*v);
  return true;
}

inline Status Unimplemented(std::string why) {
  return Status(StatusCode::kUnimplemented, std::move(why));
}

// Reads big-endian integers and strings out of a message body.
class BodyReader {
 public:
  explicit BodyReader(std::string_view body) : rest_(body) {}
  bool ok() const { return ok_; }
  std::string_view rest() const { return rest_; }

  uint32_t U32() {
    if (rest_.size() < 4) return Fail();
    uint32_t v = (uint32_t{static_cast<uint8_t>(rest_[0])} << 24) |
                 (uint32_t{static_cast<uint8_t>(rest_[1])} << 16) |
                 (uint32_t{static_cast<uint8_t>(rest_[2])} << 8) |
                 uint32_t{static_cast<uint8_t>(rest_[3])};
    rest_.remove_prefix(4);
    return v;
  }
  int32_t I32() { return static_cast<int32_t>(U32()); }
  int16_t I16() {
    if (rest_.size() < 2) return static_cast<int16_t>(Fail());
    uint16_t v = static_cast<uint16_t>((static_cast<uint8_t>(rest_[0]) << 8) |
                                       static_cast<uint8_t>(rest_[1]));
    rest_.remove_prefix(2);
    return static_cast<int16_t>(v);
  }
  std::string_view Take(size_t n) {
    if (rest_.size() < n) {
      Fail();
      return {};
    }
    std::string_view out = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return out;
  }
  // A NUL-terminated string.
  std::string_view CString() {
    size_t end = rest_.find('\0');
    if (end == std::string_view::npos) {
      Fail();
      return {};
    }
    std::string_view out = rest_.substr(0, end);
    rest_.remove_prefix(end + 1);
    return out;
  }

 private:
  uint32_t Fail() {
    ok_ = false;
    rest_ = {};
    return 0;
  }
  std::string_view rest_;
  bool ok_ = true;
};

// Appends protocol messages to a buffer.
class MessageWriter {
 public:
  explicit MessageWriter(std::string* out) : out_(out) {}
  // A message with a type byte; Startup/SSLRequest/Cancel have none (0).
  void Begin(char type) {
    if (type != 0) out_->push_back(type);
    start_ = out_->size();
    U32(0);
  }
  void End() {
    uint32_t length = static_cast<uint32_t>(out_->size() - start_);
    for (int i = 0; i < 4; ++i) {
      (*out_)[start_ + static_cast<size_t>(i)] = static_cast<char>((length >> (24 - 8 * i)) & 0xFF);
    }
  }
  void U32(uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8)
      out_->push_back(static_cast<char>((v >> shift) & 0xFF));
  }
  void I32(int32_t v) { U32(static_cast<uint32_t>(v)); }
  void I16(int16_t v) {
    uint16_t u = static_cast<uint16_t>(v);
    out_->push_back(static_cast<char>(u >> 8));
    out_->push_back(static_cast<char>(u & 0xFF));
  }
  void Str(std::string_view s) {
    out_->append(s);
    out_->push_back('\0');
  }
  void Raw(std::string_view s) { out_->append(s); }
  void Byte(char c) { out_->push_back(c); }

 private:
  std::string* out_;
  size_t start_ = 0;
};

int RemainingMs(const Deadline& deadline);
// Waits until `fd` is ready for `events`; false with `error` set otherwise.
bool WaitFor(int fd, short events, const Deadline& deadline, std::string* error);

// One socket with a read buffer. Non-blocking; waits with poll().
class Wire {
 public:
  Wire() = default;
  ~Wire() { Close(); }
  Wire(const Wire&) = delete;
  Wire& operator=(const Wire&) = delete;

  void Adopt(int fd) {
    Close();
    fd_ = fd;
  }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    begin_ = end_ = 0;
  }
  bool open() const { return fd_ >= 0; }

  bool Send(std::string_view data, const Deadline& deadline, std::string* error);

  // Reads exactly one byte (the SSLRequest answer, which is not a message).
  bool ReadByte(char* out, const Deadline& deadline, std::string* error);

  // Reads one message; `body` stays valid until the next read.
  bool ReadMessage(char* type, std::string_view* body, const Deadline& deadline,
                   std::string* error);

 private:
  // Reads what has arrived into the buffer, growing it when full.
  bool TakeAvailable(std::string* error);

  // Makes `n` unread bytes available.
  bool Fill(size_t n, const Deadline& deadline, std::string* error);

  int fd_ = -1;
  std::vector<char> buffer_ = std::vector<char>(light_internal::kReadBufferSize);
  size_t begin_ = 0;
  size_t end_ = 0;
};

// An address to connect to, kept for CancelRequest.
struct Address {
  sockaddr_storage storage{};
  socklen_t length = 0;
  std::string text;  // "127.0.0.1" or the socket path, for messages
};

// The socket addresses to try for `target`, in order (a Unix socket, or
// what the host name resolves to); false with a libpq-style `error`.
bool AddressesOf(const Target& target, std::vector<Address>* addresses, std::string* error);

// Connects a non-blocking socket to `address` before `deadline`.
int ConnectTo(const Address& address, const Deadline& deadline, std::string* error);

// The fields of an ErrorResponse or NoticeResponse body, by type byte.
class ErrorFields {
 public:
  explicit ErrorFields(std::string_view body) {
    BodyReader reader(body);
    while (reader.ok() && !reader.rest().empty()) {
      std::string_view item = reader.CString();
      if (!reader.ok() || item.empty()) break;
      fields_.emplace_back(item[0], item.substr(1));
    }
  }
  std::optional<std::string_view> Get(char code) const {
    for (const auto& [c, value] : fields_) {
      if (c == code) return value;
    }
    return std::nullopt;
  }
  std::string Severity() const {
    std::optional<std::string_view> s = Get('V');
    if (!s) s = Get('S');
    return s ? std::string(*s) : "ERROR";
  }
  Status ToStatus(std::string_view statement) const {
    return ErrorFromFields([this](char code) { return Get(code); }, statement);
  }

 private:
  std::vector<std::pair<char, std::string_view>> fields_;
};

inline Status NotForThisCall(std::string_view statement, std::string_view what) {
  return Status(StatusCode::kInvalidArgument, std::string(what))
      .With("statement", Excerpt(statement));
}

class LightConnection final : public PgSession {
 public:
  explicit LightConnection(std::string redacted_url) : redacted_url_(std::move(redacted_url)) {}
  ~LightConnection() override {
    if (wire_.open() && !broken_) {
      std::string out;
      MessageWriter w(&out);
      w.Begin('X');
      w.End();
      std::string ignored;
      (void)wire_.Send(out, Clock::now() + std::chrono::milliseconds(100), &ignored);
    }
  }
  LightConnection(const LightConnection&) = delete;
  LightConnection& operator=(const LightConnection&) = delete;

  // Connects, negotiates and authenticates. Errors as OpenLight() returns them.
  Status Start(const Target& target, const ConnectTarget& connect_target, const Deadline& deadline);

  Engine engine() const override { return Engine::kPostgres; }
  const std::string& redacted_url() const override { return redacted_url_; }

  Result<int64_t> Exec(std::string_view sql) override;
  Result<std::vector<int64_t>> ExecBatch(const std::vector<BatchItem>& items) override;
  Result<QueryResult> Query(std::string_view sql, const Params& params) override;
  Status Stream(std::string_view sql, const Params& params, const RowCallback& on_row) override;

  bool InTransaction() const override { return tx_status_ == 'T' || tx_status_ == 'E'; }

  Status CopyOut(std::string_view copy_sql,
                 const std::function<Status(std::string_view chunk)>& /*sink*/) override {
    return NoCopy(copy_sql);
  }
  Result<std::unique_ptr<CopyWriter>> CopyIn(std::string_view copy_sql) override {
    return NoCopy(copy_sql);
  }

  Result<ServerInfo> Info() override { return DescribeServer(*this); }
  int SessionId() const override { return backend_pid_; }

 private:
  static Status NoCopy(std::string_view statement) {
    return Status(StatusCode::kUnimplemented,
                  "the light client does not do COPY; open the connection with libpq "
                  "(ConnectOptions.short_session = false)")
        .With("statement", Excerpt(statement));
  }

  Status CheckReady(std::string_view statement) const override;
  Status CheckStatement(std::string_view sql, size_t params) const;
  // Sends `out_`; on failure the session is marked lost.
  Status Flush(std::string_view statement);
  // Reads the next message that is not asynchronous (notices, parameter
  // changes and notifications are handled here).
  Status Next(char* type, std::string_view* body, std::string_view statement);
  Status Lost(std::string_view statement, std::string_view why);
  // A server error; a FATAL one is kept, as the session ends with it.
  Status ServerError(std::string_view body, std::string_view statement);
  void HandleNotice(std::string_view body);
  // Appends Parse/Bind/(Describe)/Execute for one statement to out_.
  void AppendExtended(std::string_view sql, const Params* params, bool describe);
  void AppendSync();
  // Answers CopyInResponse: COPY FROM STDIN cannot run through these calls.
  void RefuseCopyIn(bool extended);
  // Runs `sql` with the simple protocol; `last_tag` gets the final command tag.
  Result<int64_t> Simple(std::string_view sql, std::string* last_tag);
  // What one call does with the replies to what it sent; ReadReplies does
  // the rest alike for every call (server errors, COPY refused, unexpected
  // messages) up to ReadyForQuery. A hook's non-ok Status (a malformed
  // message) ends the read at once.
  struct ReplyHooks {
    std::string_view call;  // named in the COPY refusal: "Exec", "Query"...
    bool extended = true;   // extended protocol (else simple)
    std::function<std::string_view()> statement;  // the one errors name
    std::function<Status(std::string_view body)> columns;  // RowDescription
    std::function<Status(std::string_view body)> row;      // DataRow
    std::function<void(std::string_view tag)> done;        // CommandComplete
    std::function<void()> empty;                           // EmptyQueryResponse
    std::function<Status(Status)> decorate;  // adds context to errors (batch_index)
  };
  // Reads up to ReadyForQuery: the first error seen, ok if none.
  Status ReadReplies(const ReplyHooks& hooks);
  Status ReadColumns(std::string_view body, std::vector<Column>* columns,
                     std::string_view statement);
  Status AppendRow(std::string_view body, QueryResult* out, std::string_view statement);
  Status RunControl(std::string_view sql, std::string* tag) override;
  // Sends CancelRequest on a new connection and waits for the server to take it.
  void Cancel();
  static std::vector<Column> Columns(std::string_view row_description, bool* ok);
  // Start's stages (pg_light_startup.cc).
  struct StartupAuth {
    std::optional<ScramSha256> scram;
    bool scram_verified = false;
  };
  Status ConnectSocket(const Target& target, const ConnectTarget& connect_target,
                       const Deadline& deadline);
  Status SendStartup(const Target& target, const ConnectTarget& connect_target,
                     const Deadline& deadline);
  Status ReadStartup(const Target& target, const ConnectTarget& connect_target,
                     const Deadline& deadline);
  Status AnswerAuth(int32_t code, BodyReader* reader, const Target& target,
                    const ConnectTarget& connect_target, const Deadline& deadline,
                    StartupAuth* auth);

  Wire wire_;
  Address address_;
  std::string redacted_url_;
  std::string out_;
  int backend_pid_ = 0;
  int32_t secret_key_ = 0;
  char tx_status_ = 'I';
  bool broken_ = false;
  std::optional<Status> fatal_;  // a FATAL error the server sent before closing
  std::string server_version_;
  std::vector<std::optional<std::string_view>> fields_;  // scratch for DataRow
};

}  // namespace ferry::postgres::light_internal
