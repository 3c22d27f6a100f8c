#!/usr/bin/env bash
# One row of the benchmark, runnable alone: `host-setup image pull` (download +
# unpack) of one image from a local registry, against `skopeo copy docker:// oci:`
# + `umoci unpack` of the same image; each run from a cold store (prepare removes it).
# The registry is Debian's docker-registry on 127.0.0.1 with a temp storage dir,
# stopped by the pid started here; the image (busybox-static + BENCH_IMAGE_MB MB of
# files) is built as an OCI layout with umoci and pushed with skopeo.
#
#   sudo tests/bench/image_pull.sh       prints one Markdown table row
#   BENCH_RUNS=5 BENCH_IMAGE_MB=64 BENCH_BIN=target/.../release
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${BENCH_RUNS:-5}
MB=${BENCH_IMAGE_MB:-64}
BIN=${BENCH_BIN:-$PWD/target/x86_64-unknown-linux-gnu/release}
for t in docker-registry skopeo umoci hyperfine jq busybox; do
    command -v "$t" >/dev/null || { echo "image_pull.sh: $t is missing" >&2; exit 3; }
done
W=/tmp/hs-bench-img$$
REG_PID=""
cleanup() {
    set +e
    [ -n "$REG_PID" ] && kill "$REG_PID" && wait "$REG_PID" 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/b"
# The image: one layer of busybox-static and MB files of 1 MiB of random bytes.
umoci init --layout "$W/layout" >/dev/null
umoci new --image "$W/layout:1" >/dev/null
umoci unpack --rootless --image "$W/layout:1" "$W/b/u" >/dev/null
R=$W/b/u/rootfs
mkdir -p "$R/bin" "$R/data"
cp "$(command -v busybox)" "$R/bin/busybox"
ln -s busybox "$R/bin/sh"
for i in $(seq "$MB"); do head -c 1048576 /dev/urandom >"$R/data/f$i"; done
umoci repack --image "$W/layout:1" "$W/b/u" >/dev/null
# The registry, on a port free now (python-free: ask the kernel via bash's /dev/tcp probe).
PORT=$((20000 + $$ % 20000))
while (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do PORT=$((PORT + 1)); done
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
    "$W/storage" "$PORT" >"$W/config.yml"
docker-registry serve "$W/config.yml" >"$W/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.05; done
A=127.0.0.1:$PORT
skopeo copy --quiet --dest-tls-verify=false "oci:$W/layout:1" "docker://$A/bench/img:1"
export HOST_SETUP_STATE_DIR=$W/state
hyperfine -N -r "$RUNS" -w 1 --style none --export-json "$W/img.json" \
    --prepare "rm -rf $W/state $W/o $W/u" \
    "$BIN/host-setup image pull $A/bench/img:1 --insecure-registry $A" \
    "sh -c 'skopeo copy --quiet --src-tls-verify=false docker://$A/bench/img:1 oci:$W/o:1 && umoci unpack --image $W/o:1 $W/u >/dev/null'" \
    >/dev/null
med() { jq -r ".results[$1].median" "$W/img.json"; }
cell() { jq -r ".results[$1] | \"\(.median * 1000 | round) ms (\(.min * 1000 | round)-\(.max * 1000 | round))\"" "$W/img.json"; }
SIZE=$(du -sm "$W/layout/blobs" | cut -f1)
echo "| image pull + unpack, local registry (${SIZE} MB layout, cold store) | $(cell 0) | skopeo copy + umoci unpack: $(cell 1) | $(awk -v a="$(med 0)" -v b="$(med 1)" 'BEGIN { printf "%.2fx", a / b }') of skopeo + umoci |"
