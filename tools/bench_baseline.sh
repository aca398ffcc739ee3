#!/bin/sh
# tools/bench_baseline.sh REV [OUTFILE]: builds mailgate's executable as it was
# at git revision REV, for the benchmark's before/after comparison
# (deno task bench --baseline=PATH, or --baseline-rev=REV, which runs this).
#
# The revision is checked out into a detached worktree under the temp
# directory (the work tree and its uncommitted changes are not touched),
# node_modules is a symlink to this checkout's (the build needs only bun),
# and the executable is built there the way the project builds it:
#   bun build --compile --bytecode --format=esm main.ts --outfile OUTFILE
# The worktree is removed afterwards, also when the build fails.
# OUTFILE defaults to a fresh temp directory's mailgate-REV; the script
# prints the executable's absolute path as its last stdout line.
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 REV [OUTFILE]" >&2
  exit 2
fi
REV=$1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUN="$ROOT/node_modules/.bin/bun"
[ -x "$BUN" ] || { echo "$0: $BUN missing (npm install first)" >&2; exit 1; }

SHA=$(git -C "$ROOT" rev-parse --verify --quiet "$REV^{commit}") || {
  echo "$0: no such git revision: $REV" >&2
  exit 1
}
SHORT=$(git -C "$ROOT" rev-parse --short "$SHA")
if [ $# -eq 2 ]; then
  OUT=$(realpath -m "$2")
else
  OUT="$(mktemp -d "${TMPDIR:-/tmp}/mailgate-baseline-XXXXXX")/mailgate-$SHORT"
fi
mkdir -p "$(dirname "$OUT")"

WT=$(mktemp -d "${TMPDIR:-/tmp}/mailgate-wt-XXXXXX")
cleanup() {
  git -C "$ROOT" worktree remove --force "$WT" >/dev/null 2>&1 || true
  rm -rf "$WT"
  git -C "$ROOT" worktree prune >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# mktemp made the directory; worktree add wants to create it (or find it empty).
git -C "$ROOT" worktree add --detach --quiet "$WT" "$SHA" >&2
ln -s "$ROOT/node_modules" "$WT/node_modules"
echo "building $SHORT ($(git -C "$ROOT" log -1 --format=%cs "$SHA")) -> $OUT" >&2
(cd "$WT" && "$BUN" build --compile --bytecode --format=esm main.ts --outfile "$OUT" >&2)
echo "$OUT"
