// pgoutput decoder: hand-built protocol-1 messages, as PostgreSQL sends them.
#include "move/sync/pgoutput.h"

#include <gtest/gtest.h>

#include <string>

namespace ferry::pgoutput {
namespace {

// Builds big-endian messages byte by byte.
class Bytes {
 public:
  explicit Bytes(char type) { s_.push_back(type); }
  Bytes& U8(uint8_t v) { s_.push_back(static_cast<char>(v)); return *this; }
  Bytes& U16(uint16_t v) { return Int(v, 2); }
  Bytes& U32(uint32_t v) { return Int(v, 4); }
  Bytes& U64(uint64_t v) { return Int(v, 8); }
  Bytes& Str(const std::string& v) { s_ += v; s_.push_back('\0'); return *this; }
  Bytes& Text(const std::string& v) {
    U8('t');
    U32(static_cast<uint32_t>(v.size()));
    s_ += v;
    return *this;
  }
  Bytes& Raw(const std::string& v) { s_ += v; return *this; }
  const std::string& str() const { return s_; }

 private:
  Bytes& Int(uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) s_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return *this;
  }
  std::string s_;
};

TEST(PgoutputTest, DecodesBeginAndCommit) {
  auto b = Decode(Bytes('B').U64(0x16B3748).U64(777).U32(42).str());
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  const auto& begin = std::get<Begin>(*b);
  EXPECT_EQ(begin.final_lsn, 0x16B3748u);
  EXPECT_EQ(begin.commit_time, 777);
  EXPECT_EQ(begin.xid, 42u);

  auto c = Decode(Bytes('C').U8(0).U64(0x100).U64(0x180).U64(999).str());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const auto& commit = std::get<Commit>(*c);
  EXPECT_EQ(commit.commit_lsn, 0x100u);
  EXPECT_EQ(commit.end_lsn, 0x180u);
  EXPECT_EQ(commit.commit_time, 999);
}

TEST(PgoutputTest, DecodesRelationWithKeyFlags) {
  auto r = Decode(Bytes('R')
                      .U32(16385).Str("public").Str("users").U8('d').U16(2)
                      .U8(1).Str("id").U32(20).U32(0xFFFFFFFF)
                      .U8(0).Str("name").U32(25).U32(0xFFFFFFFF)
                      .str());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto& rel = std::get<Relation>(*r);
  EXPECT_EQ(rel.id, 16385u);
  EXPECT_EQ(rel.schema, "public");
  EXPECT_EQ(rel.name, "users");
  EXPECT_EQ(rel.replica_identity, 'd');
  ASSERT_EQ(rel.columns.size(), 2u);
  EXPECT_TRUE(rel.columns[0].key);
  EXPECT_EQ(rel.columns[0].type_oid, 20u);
  EXPECT_EQ(rel.columns[0].type_modifier, -1);
  EXPECT_FALSE(rel.columns[1].key);
  EXPECT_EQ(rel.columns[1].name, "name");
}

TEST(PgoutputTest, RelationInPgCatalogHasEmptyNamespace) {
  auto r = Decode(Bytes('R').U32(1).Str("").Str("t").U8('f').U16(0).str());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(std::get<Relation>(*r).schema, "pg_catalog");
}

TEST(PgoutputTest, DecodesInsertWithNullAndText) {
  auto m = Decode(Bytes('I').U32(7).U8('N').U16(3).Text("1").U8('n').Text("héllo").str());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  const auto& ins = std::get<Insert>(*m);
  EXPECT_EQ(ins.relation, 7u);
  ASSERT_EQ(ins.tuple.size(), 3u);
  EXPECT_EQ(ins.tuple[0].kind, FieldKind::kText);
  EXPECT_EQ(ins.tuple[0].text, "1");
  EXPECT_EQ(ins.tuple[1].kind, FieldKind::kNull);
  EXPECT_EQ(ins.tuple[2].text, "héllo");
}

TEST(PgoutputTest, DecodesUpdateWithUnchangedToastAndOldKey) {
  auto plain = Decode(Bytes('U').U32(7).U8('N').U16(2).Text("1").U8('u').str());
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  const auto& u = std::get<Update>(*plain);
  EXPECT_EQ(u.old_kind, 0);
  EXPECT_TRUE(u.old_tuple.empty());
  ASSERT_EQ(u.tuple.size(), 2u);
  EXPECT_EQ(u.tuple[1].kind, FieldKind::kUnchangedToast);

  auto keyed = Decode(
      Bytes('U').U32(7).U8('K').U16(2).Text("1").U8('n').U8('N').U16(2).Text("2").Text("x").str());
  ASSERT_TRUE(keyed.ok()) << keyed.status().ToString();
  const auto& k = std::get<Update>(*keyed);
  EXPECT_EQ(k.old_kind, 'K');
  EXPECT_EQ(k.old_tuple[0].text, "1");
  EXPECT_EQ(k.tuple[0].text, "2");
}

TEST(PgoutputTest, DecodesDeleteFullRowAndTruncate) {
  auto d = Decode(Bytes('D').U32(9).U8('O').U16(1).Text("a").str());
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(std::get<Delete>(*d).old_kind, 'O');
  EXPECT_EQ(std::get<Delete>(*d).old_tuple[0].text, "a");

  auto t = Decode(Bytes('T').U32(2).U8(3).U32(10).U32(11).str());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  const auto& tr = std::get<Truncate>(*t);
  EXPECT_TRUE(tr.cascade);
  EXPECT_TRUE(tr.restart_identity);
  EXPECT_EQ(tr.relations, (std::vector<uint32_t>{10, 11}));
}

TEST(PgoutputTest, DecodesTypeAndOrigin) {
  auto y = Decode(Bytes('Y').U32(16400).Str("public").Str("mood").str());
  ASSERT_TRUE(y.ok());
  EXPECT_EQ(std::get<Type>(*y).name, "mood");
  auto o = Decode(Bytes('O').U64(5).Str("node_a").str());
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(std::get<Origin>(*o).name, "node_a");
}

TEST(PgoutputTest, CutShortMessageNamesWhatIsMissing) {
  auto m = Decode(Bytes('I').U32(7).U8('N').U16(1).U8('t').U32(10).Raw("abc").str());
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("'I'"), std::string::npos) << m.status().message();
  EXPECT_NE(m.status().message().find("text value"), std::string::npos) << m.status().message();

  auto c = Decode(Bytes('C').U8(0).U64(1).str());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("end LSN"), std::string::npos) << c.status().message();
}

TEST(PgoutputTest, UnknownTypesAreRefused) {
  auto m = Decode("Zxyz");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("'Z'"), std::string::npos);
  auto bad_kind = Decode(Bytes('I').U32(1).U8('N').U16(1).U8('b').str());
  ASSERT_FALSE(bad_kind.ok());
  EXPECT_FALSE(Decode("").ok());
}

TEST(PgoutputTest, DecodesStreamFrames) {
  std::string payload = Bytes('B').U64(1).U64(2).U32(3).str();
  // The frame's payload views the input, so the input must outlive it.
  const std::string frame = Bytes('w').U64(0x10).U64(0x20).U64(5).Raw(payload).str();
  auto w = DecodeFrame(frame);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  const auto& x = std::get<XLogData>(*w);
  EXPECT_EQ(x.start, 0x10u);
  EXPECT_EQ(x.wal_end, 0x20u);
  EXPECT_EQ(x.payload, payload);

  auto k = DecodeFrame(Bytes('k').U64(0x30).U64(6).U8(1).str());
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(std::get<Keepalive>(*k).wal_end, 0x30u);
  EXPECT_TRUE(std::get<Keepalive>(*k).reply_requested);

  EXPECT_FALSE(DecodeFrame(Bytes('k').U64(1).str()).ok());
  EXPECT_FALSE(DecodeFrame("q").ok());
}

TEST(PgoutputTest, EncodesStatusUpdate) {
  std::string r = EncodeStatusUpdate(0x0102030405060708, 2, 3, 4, true);
  ASSERT_EQ(r.size(), 34u);
  EXPECT_EQ(r[0], 'r');
  EXPECT_EQ(r[1], 0x01);
  EXPECT_EQ(r[8], 0x08);
  EXPECT_EQ(r[16], 0x02);
  EXPECT_EQ(r[24], 0x03);
  EXPECT_EQ(r[32], 0x04);
  EXPECT_EQ(r[33], 1);
}

TEST(PgoutputTest, LsnTextRoundTrips) {
  EXPECT_EQ(LsnText(0x16B374D848ull), "16/B374D848");
  auto lsn = ParseLsn("16/B374D848");
  ASSERT_TRUE(lsn.ok());
  EXPECT_EQ(*lsn, 0x16B374D848ull);
  EXPECT_EQ(LsnText(0), "0/0");
  EXPECT_FALSE(ParseLsn("16B374D848").ok());
  EXPECT_FALSE(ParseLsn("x/1").ok());
  EXPECT_FALSE(ParseLsn("1/").ok());
}

TEST(PgoutputTest, PgEpochConversion) {
  EXPECT_DOUBLE_EQ(PgTimeToUnix(0), 946684800.0);
  EXPECT_EQ(UnixToPgTime(946684801.0), 1000000);
}

}  // namespace
}  // namespace ferry::pgoutput
