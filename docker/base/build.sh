#!/usr/bin/env bash
# Builds the local base image for worker containers without any registry:
# a root filesystem holding this host's node binary, the shared libraries it
# links against and busybox-static, imported with `docker import`.
#
#   bash docker/base/build.sh [TAG]      (default tag: gitjobs-base:latest)
#
# Users who can reach a registry may skip this and build workers with
# --build-arg BASE_IMAGE=node:20-slim instead.
set -euo pipefail
tag="${1:-${GITJOBS_BASE_IMAGE:-gitjobs-base:latest}}"

if docker image inspect "$tag" >/dev/null 2>&1 && [ "${FORCE:-0}" != 1 ]; then
  echo "base image $tag already present (FORCE=1 to rebuild)"
  exit 0
fi

node_bin="$(readlink -f "$(command -v node)")"
busybox_bin="$(command -v busybox || true)"
if [ -z "$busybox_bin" ] || ! file "$busybox_bin" 2>/dev/null | grep -q 'statically linked'; then
  for c in /bin/busybox /usr/bin/busybox; do
    if [ -x "$c" ] && file "$c" | grep -q 'statically linked'; then busybox_bin="$c"; fi
  done
fi
if [ -z "$busybox_bin" ]; then
  echo "busybox-static is missing: apt-get install -y busybox-static" >&2
  exit 1
fi

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,usr/bin,usr/local/bin,etc,tmp,work,opt/gitjobs,proc,sys,dev,home/task}
chmod 1777 "$root/tmp"

# node, stripped of its debug info, and every library ldd names.
cp "$node_bin" "$root/usr/local/bin/node"
strip --strip-debug "$root/usr/local/bin/node" 2>/dev/null || true
ldd "$node_bin" | awk '/=>/ {print $3} /^\s*\/lib/ {print $1}' | while read -r lib; do
  [ -f "$lib" ] || continue
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
# The dynamic loader is also needed under its canonical path.
for ld in /lib64/ld-linux-x86-64.so.2 /lib/ld-linux-aarch64.so.1; do
  if [ -e "$ld" ]; then mkdir -p "$root$(dirname "$ld")"; cp -L "$ld" "$root$ld"; fi
done

cp "$busybox_bin" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done

cat > "$root/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
task:x:1000:1000:gitjobs task:/home/task:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PW
cat > "$root/etc/group" <<'GR'
root:x:0:
task:x:1000:
nogroup:x:65534:
GR
chown 1000:1000 "$root/home/task"

tar -C "$root" -c . | docker import \
  -c 'ENV PATH=/usr/local/bin:/bin:/usr/bin' \
  -c 'WORKDIR /work' \
  -c 'CMD ["/bin/sh"]' \
  - "$tag" >/dev/null
echo "built base image $tag ($(docker image inspect -f '{{.Size}}' "$tag") bytes)"
