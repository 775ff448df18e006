// Copies one key type by type, for keys RESTORE cannot take whole: a DUMP
// payload above --big-key-bytes, or one the target's Redis version cannot
// read ("DUMP payload version or checksum are wrong").
//
// The value is read in pieces (GETRANGE, HSCAN, SSCAN, ZSCAN, LRANGE,
// XRANGE with COUNT) and written with ordinary commands into a temporary key
// in the same hash slot ("{tag}" kept), which then gets the absolute expiry
// (PEXPIREAT) and is RENAMEd over the key (RENAMENX with --skip-existing).
// Readers of the target never see a half-written key. Not atomic against
// writes to the source key during the copy; stream consumer groups are not
// copied (entries only). Returns whether the key was written (false: it
// vanished from the source, or exists and skip_existing).
#pragma once

#include <cstdint>
#include <string>

#include "drivers/redis/redis_client.h"
#include "ferry/status.h"

namespace ferry::redis {

struct ByTypeCopy {
  RedisNode& source;     // the source master holding the key
  RedisClient& target;
  int64_t abs_expiry_ms = 0;  // 0: none
  bool skip_existing = false;
  int piece = 1000;      // elements (or KB of a string) per command
};

Result<bool> CopyKeyByType(const ByTypeCopy& c, const std::string& key);

// The temporary key used for `key`: same hash slot, recognisable name.
std::string TemporaryKeyFor(const std::string& key);

}  // namespace ferry::redis
