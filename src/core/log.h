// Leveled logging to stderr. Messages must already be redacted.
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace ferry {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// "debug", "info", "warn", "error", "off"; false when unknown.
bool ParseLogLevel(std::string_view text, LogLevel* level);
void LogLine(LogLevel level, std::string_view message);

template <typename... Args>
void Log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (level < GetLogLevel()) return;
  LogLine(level, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace ferry

#define FERRY_LOG_DEBUG(...) ::ferry::Log(::ferry::LogLevel::kDebug, __VA_ARGS__)
#define FERRY_LOG_INFO(...) ::ferry::Log(::ferry::LogLevel::kInfo, __VA_ARGS__)
#define FERRY_LOG_WARN(...) ::ferry::Log(::ferry::LogLevel::kWarn, __VA_ARGS__)
#define FERRY_LOG_ERROR(...) ::ferry::Log(::ferry::LogLevel::kError, __VA_ARGS__)
