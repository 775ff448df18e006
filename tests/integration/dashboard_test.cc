// The dashboard in a real browser: headless Chromium (Debian's `chromium`)
// loads the page from a real `ferry serve` while a real `ferry copy` runs,
// and the DOM it renders is checked: the job appears with its progress, and
// the progress moves once the copy can go on. A phone-width screenshot is
// kept as a test artifact (dashboard-phone.png in the working directory).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "drivers/registry.h"
#include "serve_util.h"
#include "test_util.h"

namespace ferry::testing {
namespace {

using ::testing::HasSubstr;

// The DOM after the page's scripts ran (virtual time: the 2 s polls happen
// without the test sleeping).
std::string DumpDom(int port, const std::string& profile) {
  RunResult r = RunBinary("/usr/bin/chromium",
                          {"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--user-data-dir=" + profile, "--virtual-time-budget=6000", "--dump-dom",
                           "http://127.0.0.1:" + std::to_string(port) + "/"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

// The <article class="job" ...> element of `job`, as serialized.
std::string JobElement(const std::string& dom, const std::string& job) {
  size_t at = dom.find("data-job=\"" + job + "\"");
  if (at == std::string::npos) return "";
  size_t start = dom.rfind("<article", at);
  size_t end = dom.find("</article>", at);
  return dom.substr(start, end - start);
}

TEST(Dashboard, ShowsARunningCopyAndItsProgressMoving) {
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/chromium"))
      << "headless Chromium is needed: apt-get install chromium (scripts/install-deps.sh)";
  FERRY_REQUIRE_PG(admin);
  FreshPgDatabase src, dst;
  ASSERT_TRUE(src.ok() && dst.ok());
  auto s = OpenConnection(src.url());
  auto d = OpenConnection(dst.url());
  ASSERT_TRUE(s.ok() && d.ok());
  ASSERT_TRUE((*s)->Exec("CREATE TABLE items (id bigint PRIMARY KEY, name text);"
                         "INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 2000) g")
                  .ok());
  ASSERT_TRUE((*d)->Exec("CREATE TABLE items (id bigint PRIMARY KEY, name text)").ok());
  // Hold the copy before its first write: SHARE lets it read and plan,
  // and blocks its COPY into the table until we commit.
  ASSERT_TRUE((*d)->Begin().ok());
  ASSERT_TRUE((*d)->Exec("LOCK TABLE items IN SHARE MODE").ok());

  TempDir dir;
  int copy_pid = StartFerry({"copy", "--from", src.url(), "--to", dst.url(), "--table", "items",
                             "--batch-rows", "200", "--workers", "1", "--job", "dash-job"},
                            dir.File("copy.out"));
  std::filesystem::create_directories(dir.File("migrations"));
  ServeProcess server({"serve", "-d", dst.url(), "--dir", dir.File("migrations")});
  ASSERT_TRUE(server.ok()) << server.log();

  // Wait (bounded) until the job is in the control tables.
  for (int i = 0; i < 600; ++i) {
    auto res = server.Get("/api/jobs");
    if (res && res->body.find("dash-job") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const std::string profile = dir.File("chromium");
  std::string dom = DumpDom(server.port(), profile);
  std::string job = JobElement(dom, "dash-job");
  ASSERT_FALSE(job.empty()) << dom;
  EXPECT_THAT(job, HasSubstr("data-state=\"running\""));
  EXPECT_THAT(job, HasSubstr("<progress"));
  EXPECT_THAT(job, HasSubstr("0 rows"));
  EXPECT_THAT(job, HasSubstr("chunks 0/10"));

  // Let the copy go on; once it finished, the page shows it done.
  ASSERT_TRUE((*d)->Commit().ok());
  EXPECT_EQ(WaitFerry(copy_pid), 0) << ReadFile(dir.File("copy.out.err"));
  dom = DumpDom(server.port(), profile);
  job = JobElement(dom, "dash-job");
  ASSERT_FALSE(job.empty()) << dom;
  EXPECT_THAT(job, HasSubstr("data-state=\"done\""));
  EXPECT_THAT(job, HasSubstr("2,000 rows"));
  EXPECT_THAT(job, HasSubstr("chunks 10/10"));
  EXPECT_THAT(job, HasSubstr("value=\"100\""));
  // The database card and the health badge are filled in too.
  EXPECT_THAT(dom, HasSubstr("schema version"));
  EXPECT_THAT(dom, HasSubstr("class=\"badge ok\""));

  // Phone width screenshot, kept as an artifact.
  const std::string shot = std::filesystem::absolute("dashboard-phone.png").string();
  RunResult r = RunBinary("/usr/bin/chromium",
                          {"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--user-data-dir=" + profile, "--virtual-time-budget=6000",
                           "--window-size=390,844", "--hide-scrollbars", "--screenshot=" + shot,
                           "http://127.0.0.1:" + std::to_string(server.port()) + "/"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GT(std::filesystem::file_size(shot), 1000u) << shot;
  std::printf("dashboard screenshot: %s\n", shot.c_str());
}

}  // namespace
}  // namespace ferry::testing
