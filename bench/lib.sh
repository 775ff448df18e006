# Shared by the bench scripts (sourced, not run).

# Prints the ferry binary to use: $1 when given, else build/ferry, else the
# first build-*/ferry; fails with a hint when there is none.
bench_find_ferry() {
  local root
  root="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
  if [[ -n "$1" ]]; then
    [[ -x "$1" ]] && { printf '%s\n' "$1"; return 0; }
    printf 'no ferry binary at %s\n' "$1" >&2
    return 1
  fi
  local f
  for f in "$root/build/ferry" "$root"/build-*/ferry; do
    if [[ -x "$f" ]]; then
      printf '%s\n' "$f"
      return 0
    fi
  done
  printf 'no ferry binary: build first (scripts/test.sh or cmake) or pass --ferry PATH\n' >&2
  return 1
}
