#include "drivers/cql/cql_lease.h"

#include <fmt/format.h>

namespace ferry::cql {
namespace {

std::string QuoteOne(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// "table" or "keyspace.table", each part quoted.
std::string Quote(std::string_view name) {
  size_t dot = name.find('.');
  if (dot == std::string_view::npos) return QuoteOne(name);
  return QuoteOne(name.substr(0, dot)) + "." + QuoteOne(name.substr(dot + 1));
}

// The [applied] column of a conditional write's single row.
Result<bool> Applied(const QueryResult& r) {
  if (r.rows.empty() || r.columns.empty() || r.columns[0].name != "[applied]") {
    return Status(StatusCode::kInternal, "conditional write returned no [applied] column");
  }
  return r.Text(0, 0) == "true";
}

std::string Field(const QueryResult& r, std::string_view column) {
  for (size_t c = 0; c < r.columns.size(); ++c) {
    if (r.columns[c].name == column && !r.rows.empty() && !r.IsNull(0, c)) return r.Text(0, c);
  }
  return "";
}

}  // namespace

Lease::Lease(CqlConnection* conn, std::string table, std::string name, std::string owner,
             std::chrono::seconds ttl)
    : conn_(conn), table_(std::move(table)), name_(std::move(name)), owner_(std::move(owner)),
      ttl_(ttl) {}

ExecOptions Lease::Serial() const {
  ExecOptions o;
  o.serial_consistency = Consistency::kLocalSerial;
  return o;
}

Status Lease::Ensure() {
  FERRY_RETURN_IF_ERROR(
      conn_->Exec(fmt::format("CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, owner text, "
                              "acquired_at timestamp, renewed_at timestamp)",
                              Quote(table_)))
          .status());
  return conn_->WaitForSchemaAgreement(std::chrono::seconds(30));
}

Result<bool> Lease::TryAcquire(std::optional<LeaseHolder>* holder) {
  auto r = conn_->Run(
      fmt::format("INSERT INTO {} (name, owner, acquired_at, renewed_at) VALUES (?, ?, "
                  "toTimestamp(now()), toTimestamp(now())) IF NOT EXISTS USING TTL ?",
                  Quote(table_)),
      {name_, owner_, std::to_string(ttl_.count())}, Serial());
  if (!r.ok()) return r.status();
  FERRY_ASSIGN_OR_RETURN(QueryResult text, CqlConnection::ToText(*r));
  FERRY_ASSIGN_OR_RETURN(bool applied, Applied(text));
  if (applied) {
    FERRY_ASSIGN_OR_RETURN(auto mine, Holder());
    acquired_at_ = mine ? mine->acquired_at : "";
    return true;
  }
  if (Field(text, "owner") == owner_) {  // ours already (a retry after a lost answer)
    acquired_at_ = Field(text, "acquired_at");
    FERRY_RETURN_IF_ERROR(Renew());
    return true;
  }
  if (holder != nullptr) {
    FERRY_ASSIGN_OR_RETURN(*holder, Holder());
  }
  return false;
}

Status Lease::Renew() {
  auto r = conn_->Run(fmt::format("UPDATE {} USING TTL ? SET owner = ?, acquired_at = ?, "
                                  "renewed_at = toTimestamp(now()) WHERE name = ? IF owner = ?",
                                  Quote(table_)),
                      {std::to_string(ttl_.count()), owner_,
                       acquired_at_.empty() ? std::nullopt : Value(acquired_at_), name_, owner_},
                      Serial());
  if (!r.ok()) return r.status();
  FERRY_ASSIGN_OR_RETURN(QueryResult text, CqlConnection::ToText(*r));
  FERRY_ASSIGN_OR_RETURN(bool applied, Applied(text));
  if (applied) return Status();
  std::string now_owner = Field(text, "owner");
  return Status(StatusCode::kFailedPrecondition,
                fmt::format("lease '{}' in table {} was lost{}: it expired before it was renewed",
                            name_, table_,
                            now_owner.empty() ? "" : " to " + now_owner));
}

Status Lease::Release() {
  auto r = conn_->Run(fmt::format("DELETE FROM {} WHERE name = ? IF owner = ?", Quote(table_)),
                      {name_, owner_}, Serial());
  return r.status();
}

Result<std::optional<LeaseHolder>> Lease::Holder() {
  ExecOptions o;
  o.consistency = Consistency::kLocalSerial;
  auto r = conn_->Run(fmt::format("SELECT owner, acquired_at, renewed_at, TTL(owner) AS ttl "
                                  "FROM {} WHERE name = ?",
                                  Quote(table_)),
                      {name_}, o);
  if (!r.ok()) return r.status();
  FERRY_ASSIGN_OR_RETURN(QueryResult text, CqlConnection::ToText(*r));
  if (text.empty()) return std::optional<LeaseHolder>();
  LeaseHolder h;
  h.owner = Field(text, "owner");
  h.acquired_at = Field(text, "acquired_at");
  h.renewed_at = Field(text, "renewed_at");
  std::string ttl = Field(text, "ttl");
  h.expires_in_s = ttl.empty() ? 0 : std::stoll(ttl);
  return std::optional<LeaseHolder>(std::move(h));
}

}  // namespace ferry::cql
