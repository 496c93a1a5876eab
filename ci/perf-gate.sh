#!/usr/bin/env bash
# ci/perf-gate.sh: the performance gate for any CI (GitHub Actions, GitLab, Jenkins, a shell).
#
# Installs the project (or uses an interpreter that already has it), runs one scenario
# against the embedded PostgreSQL or an external one, gates it, copies what the gate wrote
# into an artifacts folder and exits with the gate's exit code:
#   0 pass (or inconclusive, unless the policy says fail) | 1 regressed or a hard failure
#   2 bad input (a knob below, a baseline that does not exist, a refused comparison)
#   3 the run could not be carried out or cannot be judged (e.g. a saturated generator)
#
# Two ways to gate (PERF_MODE):
#   baseline  `harness run --baseline NAME`: this checkout against a stored baseline
#             (baselines/NAME/, saved with `harness baseline save`). Cheap; the baseline
#             must come from the same kind of machine (otherwise exit 2: mismatch).
#   ab        `harness ab`: the base revision (PERF_BASE_REF, checked out by the harness
#             into a git worktree) and this checkout, measured in alternating rounds in
#             the same job on the same machine. The noise-robust choice on shared runners.
#             PERF_BASE_REF=HEAD is an A/A job: the same revision against itself, whose
#             verdicts measure the gate's false-alarm rate on this machine.
#
# Knobs (environment variables; an empty value means the default):
#   PERF_MODE          baseline | ab                                         [baseline]
#   PERF_SCENARIO      dashboard | agents | writer | mixed | upstream_faults | healthz  [mixed]
#   PERF_PROFILE       optimized | naive: the profile of this checkout      [optimized]
#   PERF_DATASET       tiny | small | medium | large                          [small]
#   PERF_SEED          dataset seed                                           [42]
#   PERF_USERS         concurrent simulated users                             [20]
#   PERF_SPAWN_RATE    users started per second                               [10]
#   PERF_DURATION      measured time per run (40s+ lets the gate decide; e.g. 60s, 2m)  [60s]
#   PERF_WARMUP        load before measuring, excluded                        [10s]
#   PERF_WORKERS       local Locust worker processes (0: one process)         [1]
#   PERF_ROUNDS        baseline: runs gated as one set; ab: runs per side     [1 | 3]
#   PERF_BASELINE      baseline mode: the baseline's name in PERF_STORE, or a directory [main]
#   PERF_BASE_REF      ab mode: the git revision side A runs (branch, tag, sha) [origin/main]
#   PERF_STORE         where baselines (and policy.toml) are kept            [baselines]
#   PERF_POLICY        tolerance policy file                                  [PERF_STORE/policy.toml]
#   PERF_ALLOW_MISMATCH  1: compare across different load, dataset or machine anyway [0]
#   PERF_DATABASE_URL  external PostgreSQL 14+ URL (role with CREATEDB); empty: the
#                      embedded server under PERF_STATE_DIR        [$HARNESS_DATABASE_URL or embedded]
#   PERF_STATE_DIR     embedded PostgreSQL data, seeded templates, worktrees   [.harness]
#   PERF_ARTIFACTS     the folder CI uploads: gate.json, junit.xml, summary.md, report.html,
#                      harness.log, exit_code, and the full run records under reports/  [perf-artifacts]
#   PERF_INSTALL       1: create PERF_VENV if missing and `pip install -e .` into it;
#                      0: use PERF_PYTHON as it is (the project already installed)  [1]
#   PERF_VENV          the virtual environment PERF_INSTALL=1 uses (cache it in CI)  [.venv]
#   PERF_PYTHON        the interpreter that creates PERF_VENV (PERF_INSTALL=1) or runs the
#                      harness (PERF_INSTALL=0)                               [python3]
#   PERF_EXTRA_ARGS    more options for `harness run` / `harness ab`, split on spaces  []
#
# Run from anywhere: the script works in the checkout it lives in, and relative paths in
# the knobs are relative to that checkout. Example:
#   PERF_MODE=ab PERF_BASE_REF=origin/main PERF_DATASET=tiny bash ci/perf-gate.sh
set -euo pipefail

say() { printf 'perf-gate: %s\n' "$*" >&2; }
bad_knob() { say "$*"; exit 2; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

MODE="${PERF_MODE:-baseline}"
SCENARIO="${PERF_SCENARIO:-mixed}"
PROFILE="${PERF_PROFILE:-optimized}"
DATASET="${PERF_DATASET:-small}"
SEED="${PERF_SEED:-42}"
USERS="${PERF_USERS:-20}"
SPAWN_RATE="${PERF_SPAWN_RATE:-10}"
DURATION="${PERF_DURATION:-60s}"
WARMUP="${PERF_WARMUP:-10s}"
WORKERS="${PERF_WORKERS:-1}"
BASELINE="${PERF_BASELINE:-main}"
BASE_REF="${PERF_BASE_REF:-origin/main}"
STORE="${PERF_STORE:-baselines}"
POLICY="${PERF_POLICY:-}"
ALLOW_MISMATCH="${PERF_ALLOW_MISMATCH:-0}"
DATABASE_URL="${PERF_DATABASE_URL:-${HARNESS_DATABASE_URL:-}}"
STATE_DIR="${PERF_STATE_DIR:-.harness}"
ARTIFACTS="${PERF_ARTIFACTS:-perf-artifacts}"
INSTALL="${PERF_INSTALL:-1}"
VENV="${PERF_VENV:-.venv}"
PYTHON="${PERF_PYTHON:-python3}"
EXTRA_ARGS="${PERF_EXTRA_ARGS:-}"

# ---- the knobs, checked before anything is installed or run: one line and exit 2 ------
one_of() {  # one_of NAME VALUE CHOICE...
    local name="$1" value="$2" choice; shift 2
    for choice in "$@"; do [ "$value" = "$choice" ] && return 0; done
    bad_knob "$name must be one of: $*; not '$value'"
}
whole() {  # whole NAME VALUE MIN
    [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge "$3" ] || bad_knob "$1 must be a whole number >= $3, not '$2'"
}
duration() {
    [[ "$2" =~ ^([0-9]+(\.[0-9]+)?|([0-9]+(\.[0-9]+)?h)?([0-9]+(\.[0-9]+)?m)?([0-9]+(\.[0-9]+)?s)?)$ ]] \
        && [ -n "$2" ] || bad_knob "$1 must be a duration such as 45s, 2m or 1m30s, not '$2'"
}
one_of PERF_MODE "$MODE" baseline ab
one_of PERF_SCENARIO "$SCENARIO" dashboard agents writer mixed upstream_faults healthz
one_of PERF_PROFILE "$PROFILE" optimized naive
one_of PERF_DATASET "$DATASET" tiny small medium large
one_of PERF_ALLOW_MISMATCH "$ALLOW_MISMATCH" 0 1
one_of PERF_INSTALL "$INSTALL" 0 1
whole PERF_SEED "$SEED" 0
whole PERF_USERS "$USERS" 1
whole PERF_WORKERS "$WORKERS" 0
[[ "$SPAWN_RATE" =~ ^[0-9]+(\.[0-9]+)?$ ]] && [[ ! "$SPAWN_RATE" =~ ^0+(\.0+)?$ ]] \
    || bad_knob "PERF_SPAWN_RATE must be a positive number, not '$SPAWN_RATE'"
duration PERF_DURATION "$DURATION"
duration PERF_WARMUP "$WARMUP"
if [ "$MODE" = ab ]; then ROUNDS="${PERF_ROUNDS:-3}"; else ROUNDS="${PERF_ROUNDS:-1}"; fi
whole PERF_ROUNDS "$ROUNDS" 1
if [ -n "$DATABASE_URL" ] && [[ ! "$DATABASE_URL" =~ ^postgres(ql)?:// ]]; then
    bad_knob "PERF_DATABASE_URL must be a postgresql:// URL"  # never echoed: it may hold a password
fi
[ -z "$POLICY" ] || [ -f "$POLICY" ] || bad_knob "PERF_POLICY: no such file '$POLICY'"
if [ "$MODE" = baseline ] && [[ "$BASELINE" == */* ]] && [ ! -d "$BASELINE" ]; then
    bad_knob "PERF_BASELINE: no such directory '$BASELINE'"
fi
if [ "$MODE" = baseline ] && [[ "$BASELINE" != */* ]] && [ ! -d "$STORE/$BASELINE" ]; then
    bad_knob "PERF_BASELINE: no baseline '$BASELINE' in $STORE/ (save one with: harness baseline save latest --name $BASELINE)"
fi
if [ "$MODE" = ab ]; then
    command -v git >/dev/null 2>&1 || bad_knob "PERF_MODE=ab needs git on PATH"
    git rev-parse --verify --quiet "$BASE_REF^{commit}" >/dev/null \
        || bad_knob "PERF_BASE_REF: '$BASE_REF' is not a commit in $ROOT (fetch it first, e.g. git fetch origin $BASE_REF; shallow clones lack the base)"
fi

# ---- the interpreter --------------------------------------------------------------------
if [ "$INSTALL" = 1 ]; then
    if [ ! -x "$VENV/bin/python" ]; then
        command -v "$PYTHON" >/dev/null 2>&1 || bad_knob "PERF_PYTHON: no interpreter '$PYTHON'"
        say "creating the virtual environment $VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    say "installing the project into $VENV"
    # editable: `harness ab` finds the checkout (and its git history) through the package
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e . \
        || { say "pip install failed (exit $?)"; exit 3; }
    PY="$VENV/bin/python"
else
    command -v "$PYTHON" >/dev/null 2>&1 || bad_knob "PERF_PYTHON: no interpreter '$PYTHON'"
    "$PYTHON" -c "import harness.cli" 2>/dev/null \
        || bad_knob "PERF_PYTHON: '$PYTHON' cannot import the harness (PERF_INSTALL=1 installs it)"
    PY="$PYTHON"
fi

# ---- the run ----------------------------------------------------------------------------
mkdir -p "$ARTIFACTS"
ARTIFACTS="$(cd "$ARTIFACTS" && pwd)"
OUT="$ARTIFACTS/reports"
rm -f "$ARTIFACTS"/{gate.json,junit.xml,summary.md,report.html,ab.json,harness.log,exit_code}
mkdir -p "$OUT"

common=(--scenario "$SCENARIO" --profile "$PROFILE" --dataset "$DATASET" --seed "$SEED"
        --users "$USERS" --spawn-rate "$SPAWN_RATE" --duration "$DURATION" --warmup "$WARMUP"
        --workers "$WORKERS" --rounds "$ROUNDS" --state-dir "$STATE_DIR" --out "$OUT"
        --store "$STORE")
[ -z "$POLICY" ] || common+=(--policy "$POLICY")
[ "$ALLOW_MISMATCH" = 0 ] || common+=(--allow-mismatch)
[ -z "$DATABASE_URL" ] || common+=(--database-url "$DATABASE_URL")
extra=()
[ -z "$EXTRA_ARGS" ] || read -r -a extra <<<"$EXTRA_ARGS"

if [ "$MODE" = ab ]; then
    kind=ab
    # side B is this checkout as it is (uncommitted changes included), side A the base
    cmd=("$PY" -m harness.cli ab --a "ref:$BASE_REF" --b "profile:$PROFILE" "${common[@]}")
    say "A/B gate: A = $BASE_REF ($(git rev-parse --short "$BASE_REF^{commit}")), B = this checkout, $ROUNDS round(s), $SCENARIO on $DATASET"
else
    kind=runs
    cmd=("$PY" -m harness.cli run --baseline "$BASELINE" "${common[@]}")
    say "baseline gate: this checkout against '$BASELINE', $ROUNDS run(s), $SCENARIO on $DATASET"
fi
[ -z "$DATABASE_URL" ] && say "database: embedded PostgreSQL under $STATE_DIR" \
    || say "database: external (PERF_DATABASE_URL)"

before="$(ls -1 "$OUT/$kind" 2>/dev/null || true)"
# in the background, so that a cancelled CI job (SIGINT/SIGTERM to this script) reaches
# the harness, which stops the stack and keeps what it measured; then waited for
rc=0
"${cmd[@]}" ${extra[@]+"${extra[@]}"} > >(tee "$ARTIFACTS/harness.log") 2>&1 &
child=$!
trap 'say "signal: stopping the harness"; kill -TERM "$child" 2>/dev/null || true' INT TERM
while :; do
    wait "$child" && rc=0 || rc=$?
    kill -0 "$child" 2>/dev/null || break  # a signal interrupted the wait: wait again
done
trap - INT TERM
newest="$(comm -13 <(printf '%s\n' "$before" | sort) <(ls -1 "$OUT/$kind" 2>/dev/null | sort) \
          | tail -n 1)"

# ---- the artifacts ----------------------------------------------------------------------
if [ -n "$newest" ]; then
    for f in gate.json junit.xml summary.md report.html ab.json; do
        [ ! -f "$OUT/$kind/$newest/$f" ] || cp "$OUT/$kind/$newest/$f" "$ARTIFACTS/$f"
    done
fi
if [ ! -f "$ARTIFACTS/gate.json" ]; then  # no verdict: say so first, then the run's own summary
    case "$rc" in
        2) why="bad input or a refused comparison" ;;
        3) why="the run could not be carried out or cannot be judged" ;;
        *) why="no gate was written" ;;
    esac
    {
        printf '**PERF GATE NOT DECIDED** (exit %s): %s; see harness.log in the artifacts.\n\n' \
            "$rc" "$why"
        cat "$ARTIFACTS/summary.md" 2>/dev/null || true
    } >"$ARTIFACTS/summary.new"
    mv "$ARTIFACTS/summary.new" "$ARTIFACTS/summary.md"
fi
echo "$rc" >"$ARTIFACTS/exit_code"
say "exit $rc; artifacts in $ARTIFACTS${newest:+ ($kind/$newest)}"
exit "$rc"
