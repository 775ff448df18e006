// Metrics of a run: the bus consumer (a proxy for the plugin's registry),
// a node_exporter textfile written atomically, or a PUT to a Prometheus
// Pushgateway (plain HTTP, the plugin's client).
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/url.h"
#include "observe/metrics.h"
#include "observe/plugin.h"

namespace ferry {

namespace {

std::filesystem::path FolderOf(const std::string& path) {
  std::filesystem::path folder = std::filesystem::path(path).parent_path();
  return folder.empty() ? std::filesystem::path(".") : folder;
}

Status WriteError(const std::string& what, const std::string& path, int err) {
  StatusCode code = err == EACCES || err == EPERM || err == EROFS ? StatusCode::kPermissionDenied
                                                                  : StatusCode::kUnavailable;
  return Status(code, fmt::format("{} metrics file {}: {}", what, path, std::strerror(err)));
}

// Writes all of `text` to `fd`.
bool WriteAll(int fd, const std::string& text) {
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

Result<std::unique_ptr<Metrics>> Metrics::Create() {
  FERRY_ASSIGN_OR_RETURN(const ObservePlugin* plugin, LoadObservePlugin());
  return std::unique_ptr<Metrics>(new Metrics(plugin, plugin->metrics_new()));
}

Metrics::~Metrics() { plugin_->metrics_delete(registry_); }

void Metrics::Attach(EventBus& bus) {
  bus.Subscribe([this](const Event& e) { Observe(e); });
}

void Metrics::Observe(const Event& event) { plugin_->metrics_observe(registry_, event); }

std::string Metrics::Text() const { return plugin_->metrics_text(registry_); }

Status CheckMetricsFilePath(const std::string& path) {
  if (path.empty()) return Status(StatusCode::kInvalidArgument, "--metrics-file needs a path");
  std::filesystem::path folder = FolderOf(path);
  std::error_code ec;
  if (!std::filesystem::is_directory(folder, ec)) {
    return Status(StatusCode::kNotFound,
                  fmt::format("--metrics-file {}: the folder {} does not exist", path,
                              folder.string()))
        .With("hint",
              "create the folder (node_exporter's --collector.textfile.directory) or "
              "fix the path");
  }
  return Status();
}

Status WriteMetricsFile(const std::string& path, const std::string& text) {
  FERRY_RETURN_IF_ERROR(CheckMetricsFilePath(path));
  // The temporary name does not end in .prom, so the collector skips it.
  std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return WriteError("creating", tmp, errno);
  bool ok = WriteAll(fd, text) && ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    err = ok ? errno : err;
    ::unlink(tmp.c_str());
    return WriteError("writing", path, err);
  }
  return Status();
}

Status PushMetrics(const std::string& url, const std::string& command, const std::string& text) {
  // http://host:port[/prefix]
  std::string rest = url;
  if (rest.starts_with("http://")) {
    rest = rest.substr(7);
  } else if (rest.find("://") != std::string::npos) {
    return Status(
        StatusCode::kInvalidArgument,
        fmt::format("--pushgateway {}: only http:// gateways are supported", RedactSecrets(url)));
  }
  size_t slash = rest.find('/');
  std::string host_port = rest.substr(0, slash);
  std::string prefix = slash == std::string::npos ? "" : rest.substr(slash);
  while (prefix.ends_with("/")) prefix.pop_back();
  if (host_port.empty() || host_port.find('@') != std::string::npos) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("--pushgateway {}: give http://host:port", RedactSecrets(url)));
  }
  FERRY_ASSIGN_OR_RETURN(const ObservePlugin* plugin, LoadObservePlugin());
  std::string path = fmt::format("{}/metrics/job/ferry/command/{}", prefix, command);
  std::string error = plugin->http_put(host_port, path, text, "text/plain; version=0.0.4");
  if (!error.empty()) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("pushgateway {} {}", RedactSecrets(url), error));
  }
  return Status();
}

}  // namespace ferry
