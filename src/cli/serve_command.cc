// ferry serve: parses flags, binds the service (src/serve/server.h), prints
// where it listens and serves until SIGINT or SIGTERM.
#include "cli/serve_command.h"

#include <fmt/format.h>
#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <thread>

#include "cli/exit_codes.h"
#include "cli/output.h"
#include "serve/server.h"

namespace ferry::cli {

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

  // SIGINT/SIGTERM go to a waiting thread (blocked everywhere else, so the
  // server's threads inherit the mask), which stops the server.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

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
  std::thread waiter([&s, signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    s.Stop();
  });
  Status ran = s.Run();
  // Run() returned: by a signal (the waiter is done) or by itself.
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  if (!ran.ok()) return ReportError(ran, ctx.json);
  return kExitOk;
}

}  // namespace ferry::cli
