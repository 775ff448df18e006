// pgoutput decoder: see pgoutput.h. Big-endian integers, NUL-terminated
// strings, as in PostgreSQL's "Logical Replication Message Formats".
#include "move/sync/pgoutput.h"

#include <fmt/format.h>

#include <charconv>

namespace ferry::pgoutput {
namespace {

// Seconds between 1970-01-01 and 2000-01-01.
constexpr double kPgEpochOffset = 946684800.0;

class Reader {
 public:
  Reader(std::string_view bytes, char type) : bytes_(bytes), type_(type) {}

  bool failed() const { return failed_; }
  Status Error() const {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("malformed replication message '{}': {} at byte {} of {}", type_,
                              what_, pos_, bytes_.size()));
  }

  uint64_t U(int n, const char* what) {
    if (failed_) return 0;
    if (bytes_.size() - pos_ < static_cast<size_t>(n)) return Fail(what);
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(bytes_[pos_++]);
    return v;
  }
  uint8_t U8(const char* what) { return static_cast<uint8_t>(U(1, what)); }
  uint16_t U16(const char* what) { return static_cast<uint16_t>(U(2, what)); }
  uint32_t U32(const char* what) { return static_cast<uint32_t>(U(4, what)); }
  uint64_t U64(const char* what) { return U(8, what); }

  std::string Str(const char* what) {
    if (failed_) return {};
    size_t end = bytes_.find('\0', pos_);
    if (end == std::string_view::npos) {
      Fail(what);
      return {};
    }
    std::string s(bytes_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return s;
  }
  std::string_view Bytes(size_t n, const char* what) {
    if (failed_) return {};
    if (bytes_.size() - pos_ < n) {
      Fail(what);
      return {};
    }
    std::string_view v = bytes_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  std::string_view Rest() const { return bytes_.substr(pos_); }
  bool AtEnd() const { return pos_ == bytes_.size(); }

  Tuple ReadTuple() {
    Tuple t;
    uint16_t n = U16("tuple column count");
    t.reserve(n);
    for (uint16_t i = 0; i < n && !failed_; ++i) {
      Field f;
      char kind = static_cast<char>(U8("tuple column kind"));
      if (kind == 'n') {
        f.kind = FieldKind::kNull;
      } else if (kind == 'u') {
        f.kind = FieldKind::kUnchangedToast;
      } else if (kind == 't') {
        f.kind = FieldKind::kText;
        uint32_t len = U32("text value length");
        f.text = std::string(Bytes(len, "text value"));
      } else if (!failed_) {
        what_ = fmt::format("column kind '{}' (only n, u, t in protocol 1)", kind);
        failed_ = true;
      }
      t.push_back(std::move(f));
    }
    return t;
  }

 private:
  uint64_t Fail(const char* what) {
    failed_ = true;
    what_ = fmt::format("cut short before the {}", what);
    return 0;
  }

  std::string_view bytes_;
  char type_;
  size_t pos_ = 1;  // after the type byte
  bool failed_ = false;
  std::string what_;
};

template <typename T>
Result<T> Done(const Reader& r, T value) {
  if (r.failed()) return r.Error();
  return value;
}

Result<Message> DecodeRelation(Reader& r) {
  Relation rel;
  rel.id = r.U32("relation id");
  rel.schema = r.Str("namespace");
  rel.name = r.Str("relation name");
  rel.replica_identity = static_cast<char>(r.U8("replica identity"));
  uint16_t n = r.U16("column count");
  for (uint16_t i = 0; i < n && !r.failed(); ++i) {
    RelationColumn c;
    c.key = (r.U8("column flags") & 1) != 0;
    c.name = r.Str("column name");
    c.type_oid = r.U32("column type");
    c.type_modifier = static_cast<int32_t>(r.U32("type modifier"));
    rel.columns.push_back(std::move(c));
  }
  if (rel.schema.empty() && !r.failed()) rel.schema = "pg_catalog";
  return Done<Message>(r, std::move(rel));
}

Result<Message> DecodeUpdate(Reader& r) {
  Update u;
  u.relation = r.U32("relation id");
  char marker = static_cast<char>(r.U8("tuple marker"));
  if (marker == 'K' || marker == 'O') {
    u.old_kind = marker;
    u.old_tuple = r.ReadTuple();
    marker = static_cast<char>(r.U8("new tuple marker"));
  }
  if (!r.failed() && marker != 'N') {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("malformed replication message 'U': tuple marker '{}', expected N",
                              marker));
  }
  u.tuple = r.ReadTuple();
  return Done<Message>(r, std::move(u));
}

}  // namespace

std::string LsnText(uint64_t lsn) {
  return fmt::format("{:X}/{:X}", static_cast<uint32_t>(lsn >> 32), static_cast<uint32_t>(lsn));
}

Result<uint64_t> ParseLsn(std::string_view text) {
  size_t slash = text.find('/');
  auto bad = [&] {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("'{}' is not a WAL position (expected hex/hex, e.g. 0/16B3748)", text));
  };
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size()) return bad();
  uint32_t hi = 0, lo = 0;
  auto a = std::from_chars(text.data(), text.data() + slash, hi, 16);
  auto b = std::from_chars(text.data() + slash + 1, text.data() + text.size(), lo, 16);
  if (a.ec != std::errc() || a.ptr != text.data() + slash || b.ec != std::errc() ||
      b.ptr != text.data() + text.size()) {
    return bad();
  }
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

double PgTimeToUnix(int64_t pg_micros) {
  return static_cast<double>(pg_micros) / 1e6 + kPgEpochOffset;
}
int64_t UnixToPgTime(double unix_seconds) {
  return static_cast<int64_t>((unix_seconds - kPgEpochOffset) * 1e6);
}

Result<Frame> DecodeFrame(std::string_view bytes) {
  if (bytes.empty()) {
    return Status(StatusCode::kInvalidArgument, "empty replication stream message");
  }
  Reader r(bytes, bytes[0]);
  if (bytes[0] == 'w') {
    XLogData x;
    x.start = r.U64("data start");
    x.wal_end = r.U64("WAL end");
    x.send_time = static_cast<int64_t>(r.U64("send time"));
    x.payload = r.Rest();
    if (!r.failed() && x.payload.empty()) {
      return Status(StatusCode::kInvalidArgument, "malformed replication message 'w': no payload");
    }
    return Done<Frame>(r, x);
  }
  if (bytes[0] == 'k') {
    Keepalive k;
    k.wal_end = r.U64("WAL end");
    k.send_time = static_cast<int64_t>(r.U64("send time"));
    k.reply_requested = r.U8("reply flag") != 0;
    return Done<Frame>(r, k);
  }
  return Status(StatusCode::kInvalidArgument,
                fmt::format("unknown replication stream message type '{}' (expected w or k)",
                            bytes[0]));
}

std::string EncodeStatusUpdate(uint64_t written, uint64_t flushed, uint64_t applied,
                               int64_t now_pg_micros, bool reply_requested) {
  std::string out;
  out.reserve(34);
  out.push_back('r');
  auto put = [&out](uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
  };
  put(written);
  put(flushed);
  put(applied);
  put(static_cast<uint64_t>(now_pg_micros));
  out.push_back(reply_requested ? 1 : 0);
  return out;
}

Result<Message> Decode(std::string_view bytes) {
  if (bytes.empty()) return Status(StatusCode::kInvalidArgument, "empty pgoutput message");
  const char type = bytes[0];
  Reader r(bytes, type);
  switch (type) {
    case 'B': {
      Begin b;
      b.final_lsn = r.U64("final LSN");
      b.commit_time = static_cast<int64_t>(r.U64("commit time"));
      b.xid = r.U32("xid");
      return Done<Message>(r, b);
    }
    case 'C': {
      Commit c;
      c.flags = r.U8("flags");
      c.commit_lsn = r.U64("commit LSN");
      c.end_lsn = r.U64("end LSN");
      c.commit_time = static_cast<int64_t>(r.U64("commit time"));
      return Done<Message>(r, c);
    }
    case 'O': {
      Origin o;
      o.lsn = r.U64("origin LSN");
      o.name = r.Str("origin name");
      return Done<Message>(r, std::move(o));
    }
    case 'R':
      return DecodeRelation(r);
    case 'Y': {
      Type t;
      t.oid = r.U32("type oid");
      t.schema = r.Str("type namespace");
      t.name = r.Str("type name");
      return Done<Message>(r, std::move(t));
    }
    case 'I': {
      Insert i;
      i.relation = r.U32("relation id");
      char marker = static_cast<char>(r.U8("tuple marker"));
      if (!r.failed() && marker != 'N') {
        return Status(StatusCode::kInvalidArgument,
                      fmt::format("malformed replication message 'I': tuple marker '{}', "
                                  "expected N",
                                  marker));
      }
      i.tuple = r.ReadTuple();
      return Done<Message>(r, std::move(i));
    }
    case 'U':
      return DecodeUpdate(r);
    case 'D': {
      Delete d;
      d.relation = r.U32("relation id");
      d.old_kind = static_cast<char>(r.U8("tuple marker"));
      if (!r.failed() && d.old_kind != 'K' && d.old_kind != 'O') {
        return Status(StatusCode::kInvalidArgument,
                      fmt::format("malformed replication message 'D': tuple marker '{}', "
                                  "expected K or O",
                                  d.old_kind));
      }
      d.old_tuple = r.ReadTuple();
      return Done<Message>(r, std::move(d));
    }
    case 'T': {
      Truncate t;
      uint32_t n = r.U32("relation count");
      uint8_t options = r.U8("options");
      t.cascade = (options & 1) != 0;
      t.restart_identity = (options & 2) != 0;
      for (uint32_t i = 0; i < n && !r.failed(); ++i) t.relations.push_back(r.U32("relation id"));
      return Done<Message>(r, std::move(t));
    }
    default:
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("unknown pgoutput message type '{}' (byte {}); ferry speaks "
                                "protocol version 1",
                                type, static_cast<int>(static_cast<unsigned char>(type))));
  }
}

}  // namespace ferry::pgoutput
