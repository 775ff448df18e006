// Hides database passwords from the process's command line.
//
// `ps` and /proc/PID/cmdline show the memory that argv points to, for the
// whole life of the process. At start, main() copies the arguments and then
// overwrites, in that memory, every argument that is a database URL holding
// a password (`--database URL`, `--database=URL`, `-dURL`, `--from`/`--to`,
// a doctor's URL; any argument that parses as a URL with a secret) with the
// same URL without its secrets (Url::ConnectionText), padded with NUL bytes.
// ferry itself then runs on the copies.
#pragma once

#include <string>
#include <vector>

namespace ferry::cli {

// Returns argv[0..argc) as strings, as given; then overwrites the secrets
// in argv's own memory as described above.
std::vector<std::string> TakeArgsHidingSecrets(int argc, char** argv);

}  // namespace ferry::cli
