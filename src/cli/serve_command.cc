// ferry serve: parses flags, binds the service (src/serve/server.h), prints
// where it listens and serves until SIGINT or SIGTERM (then exit 0).
#include "cli/serve_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <thread>

#include "cli/exit_codes.h"
#include "cli/output.h"
#include "serve/server.h"

namespace ferry::cli {
namespace {

int g_stop_pipe[2] = {-1, -1};

void OnStopSignal(int) {
  const char stop = 's';
  [[maybe_unused]] ssize_t n = write(g_stop_pipe[1], &stop, 1);
}

}  // namespace

int RunServeCommand(const Context& ctx, const ServeArgs& args) {
  serve::ServeOptions o;
  o.listen = args.listen;
  o.token = args.token;
  o.state.databases = args.databases;
  if (o.state.databases.empty() && !ctx.config.Get("database").empty()) {
    o.state.databases.push_back(ctx.config.Get("database"));
  }
  o.state.dir = ctx.config.Get("dir");
  o.state.history_table = ctx.config.Get("history_table");
  auto bound = ParseDurationMs(args.connect_bound);
  if (!bound.ok()) return ReportError(bound.status(), ctx.json);
  o.state.connect_bound = std::chrono::milliseconds(*bound);
  auto lock_wait = ParseDurationMs(ctx.config.Get("lock_wait"));
  if (lock_wait.ok()) o.state.lock_stuck_after = std::chrono::milliseconds(*lock_wait);

  auto server = serve::Server::Bind(std::move(o));
  if (!server.ok()) return ReportError(server.status(), ctx.json);
  serve::Server& s = **server;
  if (ctx.json) {
    PrintJson({{"listening", "http://" + s.address()}});
  } else if (!ctx.quiet) {
    std::fprintf(stderr, "ferry serve: listening on http://%s (Ctrl-C stops)\n",
                 s.address().c_str());
  }
  std::fflush(stdout);
  // SIGINT/SIGTERM (Kubernetes stops a pod with SIGTERM) end the service
  // cleanly with exit 0, whichever thread the signal lands on: the handler
  // only writes to a pipe; a waiting thread reads it and stops the server.
  if (pipe(g_stop_pipe) != 0) return ReportError(Status(StatusCode::kInternal, "pipe()"), ctx.json);
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  std::thread waiter([&s] {
    char byte = 0;
    while (read(g_stop_pipe[0], &byte, 1) < 0 && errno == EINTR) {
    }
    if (byte == 's') s.Stop();  // 'q': Run() returned by itself
  });
  Status ran = s.Run();
  const char quit = 'q';
  [[maybe_unused]] ssize_t n = write(g_stop_pipe[1], &quit, 1);
  waiter.join();
  if (!ran.ok()) return ReportError(ran, ctx.json);
  if (!ctx.quiet && !ctx.json) std::fprintf(stderr, "ferry serve: stopped\n");
  return kExitOk;
}

}  // namespace ferry::cli
