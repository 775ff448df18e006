#!/usr/bin/env bash
# check-sizes.sh: reports src/ files over 800 lines and functions over 120 lines
# (docs/architecture.md's size rules). Needs Universal Ctags; reports only,
# exits 1 when something is over. Usage: scripts/check-sizes.sh [max_file] [max_fn]
set -euo pipefail
cd "$(dirname "$0")/.."
max_file=${1:-800}
max_fn=${2:-120}
over=0
while read -r n f; do
  [[ "$f" == total ]] && continue
  if (( n > max_file )); then echo "file $n $f"; over=1; fi
done < <(find src -name '*.cc' -o -name '*.h' | sort | xargs wc -l)
while IFS=$'\t' read -r n where; do
  if (( n > max_fn )); then echo "function $n $where"; over=1; fi
done < <(find src -name '*.cc' | sort | xargs ctags -x --_xformat='%{line}	%{end}	%{input}	%{name}' \
           --kinds-c++=f --languages=c++ --language-force=c++ 2>/dev/null |
         awk -F'\t' '$2 != "" { printf "%d\t%s:%d %s\n", $2 - $1 + 1, $3, $1, $4 }' | sort -rn)
exit $over
