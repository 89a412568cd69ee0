# Shared by the CLI tests (sourced; not a test itself: only tests/cli/*.sh are run).
# Provides $T (a temporary folder removed on exit), the pass/fail counters and:
#   report NAME OK              count a case (OK 1/0); on failure show the head of $T/$EXPECT_IN
#   expect NAME WANT_RC PATTERN... -- ARGS...
#                               run "$LOWBIT" ARGS (stdout in $T/out, stderr in $T/err, both in
#                               $T/all), check the exit code and that $T/$EXPECT_IN matches every
#                               PATTERN (grep -E); functions expect_before (run first) and
#                               expect_extra NAME WANT_RC, when the test defines them, add its own
#                               checks (expect_extra: echo FAIL ... and return 1)
#   finish                      print "N passed, M failed" and exit non-zero on failures
# EXPECT_IN: err (default: messages must be on stderr) or all (stdout and stderr).
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0; passes=0
EXPECT_IN=${EXPECT_IN:-err}

report() {
  if [ "$2" -eq 1 ]; then passes=$((passes + 1)); echo "ok   $1"; else
    fails=$((fails + 1)); sed 's/^/     | /' "$T/$EXPECT_IN" | head -8; fi
}

expect() {
  local name=$1 want=$2; shift 2
  local pats=()
  while [ "$1" != "--" ]; do pats+=("$1"); shift; done
  shift
  if declare -F expect_before >/dev/null; then expect_before; fi
  "$LOWBIT" "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  cat "$T/err" "$T/out" > "$T/all"
  local ok=1
  [ "$rc" -eq "$want" ] || { echo "FAIL $name: exit $rc, wanted $want"; ok=0; }
  for p in "${pats[@]}"; do
    grep -qE -- "$p" "$T/$EXPECT_IN" || { echo "FAIL $name: output ($EXPECT_IN) lacks /$p/"; ok=0; }
  done
  if declare -F expect_extra >/dev/null; then expect_extra "$name" "$want" || ok=0; fi
  report "$name" $ok
}

finish() {
  echo "$passes passed, $fails failed"
  [ "$fails" -eq 0 ]
}
