#!/usr/bin/env bash
# Fail a CI job when a change makes serving worse: probe the app as it is on the main branch, then as the
# change has it, on the same machine, and let `launch compare` decide (exit 0 no regression, 1 a regression,
# 2 not comparable). Run it from a checkout of the change, in an environment where `launch` is installed:
#
#   bash examples/ci-compare.sh                        # examples.shop:app with examples/shop.toml, against main
#   APP=myservice.main:app SCENARIOS=ci/probe.toml BASE_REF=origin/main bash examples/ci-compare.sh
#
# As a GitHub Actions step (fetch-depth: 0, so that the main branch is there to check out):
#
#   - uses: actions/checkout@v4
#     with: {fetch-depth: 0}
#   - run: pip install -e . && bash examples/ci-compare.sh
#     env: {BASE_REF: origin/main, FAIL_ON: verdict}
#
# Both probes run in this job, one after the other, on this runner: a baseline saved by another job ran on
# another machine, which `launch compare` refuses unless told --allow-different-machine.
set -euo pipefail

APP=${APP:-examples.shop:app}
SCENARIOS=${SCENARIOS:-examples/shop.toml}
PROFILES=${PROFILES:-uvicorn-1-sync}          # the set-up you deploy; a few more cost one probe each
BASE_REF=${BASE_REF:-main}
FAIL_ON=${FAIL_ON:-verdict}                  # verdict | figure | any
OUT=${OUT:-launch-compare}

change=$(git rev-parse --show-toplevel)
mkdir -p "$OUT"
out=$(cd "$OUT" && pwd)
base=$(mktemp -d)
trap 'git -C "$change" worktree remove --force "$base" >/dev/null 2>&1 || true' EXIT

# The main branch's code in a worktree of its own. Each probe runs in its checkout, which makes its app
# importable (as uvicorn does); the scenario file is the change's, so both runs fire the same bursts.
git -C "$change" worktree add --detach "$base" "$BASE_REF" >/dev/null
(cd "$base" && launch probe --app "$APP" --scenarios "$change/$SCENARIOS" --profiles "$PROFILES" \
    --json "$out/base.json" --quiet) || true   # the base's own verdicts are not this job's business

# The change, compared with the base: the exit code is compare's (0, 1 a regression, 2 not comparable).
status=0
(cd "$change" && launch probe --app "$APP" --scenarios "$change/$SCENARIOS" --profiles "$PROFILES" \
    --json "$out/new.json" --quiet --baseline "$out/base.json" --fail-on "$FAIL_ON") || status=$?
launch compare "$out/base.json" "$out/new.json" --fail-on "$FAIL_ON" --json > "$out/compare.json" || true
exit "$status"
