#!/usr/bin/env bash
# Install the native load generators the bench compares the probe with
# (Debian packages wrk and hey). Safe to run again; a tool that cannot be
# installed is reported and skipped by the bench.
set -uo pipefail
missing=()
for tool in wrk hey; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "bench/setup.sh: wrk and hey are installed"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "bench/setup.sh: no apt-get here; cannot install ${missing[*]} (the bench skips them)"
    exit 0
fi
as_root=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then as_root=(sudo -n); else
        echo "bench/setup.sh: not root and no sudo; cannot install ${missing[*]} (the bench skips them)"
        exit 0
    fi
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get -o DPkg::Lock::Timeout=300 update -qq || true
for tool in "${missing[@]}"; do
    if "${as_root[@]}" apt-get -o DPkg::Lock::Timeout=300 install -y -qq "$tool" >/dev/null; then
        echo "bench/setup.sh: installed $tool"
    else
        echo "bench/setup.sh: could not install $tool (the bench skips it)"
    fi
done
exit 0
