#!/usr/bin/env bash
# Prepares a fresh Debian machine for gitjobs, installing only what is missing:
# Docker's engine (Debian's docker.io), busybox-static, Chromium for the
# dashboard test, a running dockerd,
# a running RabbitMQ, the npm dependencies, the build, and the offline base
# image that worker Dockerfiles start FROM. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1msetup:\033[0m %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

need_apt=()
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
command -v git >/dev/null 2>&1 || need_apt+=(git)
command -v strip >/dev/null 2>&1 || need_apt+=(binutils)
command -v file >/dev/null 2>&1 || need_apt+=(file)
# Headless Chromium drives the dashboard test (through playwright-core, which downloads no browser).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v script >/dev/null 2>&1 || need_apt+=(bsdutils)
if ! { command -v busybox >/dev/null 2>&1 && file -L "$(command -v busybox)" | grep -q 'statically linked'; }; then
  need_apt+=(busybox-static)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]} (Debian packages)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Docker engine: no bridge network and no iptables rules are needed, since task containers use network none.
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd --bridge=none --iptables=false (log: /var/log/gitjobs-dockerd.log)"
  as_root sh -c 'nohup dockerd --bridge=none --iptables=false >/var/log/gitjobs-dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/gitjobs-dockerd.log" >&2; exit 1; }
fi

# RabbitMQ, unless one answers already (GITJOBS_AMQP_URL may point elsewhere).
amqp_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
if [ -z "${GITJOBS_AMQP_URL:-}" ] && ! amqp_up; then
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    log "installing rabbitmq-server (Debian package)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
  fi
  log "starting RabbitMQ (rabbitmq-server -detached)"
  as_root rabbitmq-server -detached || true
  for _ in $(seq 1 120); do amqp_up && break; sleep 0.5; done
  amqp_up || { echo "RabbitMQ did not start on 127.0.0.1:5672" >&2; exit 1; }
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
log "building"
npm run build --silent

bash docker/base/build.sh
log "ready"
