#!/usr/bin/env bash
# Idempotent system set-up for Twinsite on Debian: the packages the project needs,
# pgvector (not packaged in bookworm, built from Debian's own source package),
# PostgreSQL and Redis running, the database and the vector extension created.
# Every step checks first, so a second run does nothing and takes a second or two.
set -euo pipefail

PG_VERSION=${PG_VERSION:-15}
PG_CONFIG=/usr/lib/postgresql/$PG_VERSION/bin/pg_config
DB_NAME=${TWIN_DB_NAME:-twinsite}
DB_HOST=${TWIN_DB_HOST:-127.0.0.1}
DB_USER=${TWIN_DB_USER:-postgres}

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else SUDO=false; fi
fi

apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} = 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  if [ $apt_updated = 0 ]; then $SUDO apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

apt_install "postgresql-$PG_VERSION" redis-server chromium ca-certificates
# The public-domain author corpora of the fidelity benchmark (bench/authors.py): Bierce, KJV.
apt_install dict-devil bible-kjv bible-kjv-text

# pgvector: build once from Debian trixie's source package against our PostgreSQL.
if [ ! -f "/usr/share/postgresql/$PG_VERSION/extension/vector.control" ]; then
  log "building pgvector from Debian's source package (about 10 s)"
  apt_install "postgresql-server-dev-$PG_VERSION" build-essential dpkg-dev
  src_list=/etc/apt/sources.list.d/twinsite-trixie-src.sources
  if [ ! -f "$src_list" ]; then
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      | $SUDO tee "$src_list" >/dev/null
    $SUDO apt-get update -qq
  fi
  build_dir=$(mktemp -d); chmod 755 "$build_dir"  # apt downloads as the _apt user
  (
    cd "$build_dir"
    apt-get source --download-only -qq pgvector >/dev/null
    dpkg-source -x --skip-debianization pgvector_*.dsc src >/dev/null 2>&1  # apt checked the hashes
    cd src
    make -s PG_CONFIG="$PG_CONFIG" >/dev/null
    $SUDO make -s install PG_CONFIG="$PG_CONFIG" >/dev/null
  )
  rm -rf "$build_dir"
fi

# PostgreSQL and Redis: start them when they are not answering.
if ! pg_isready -q -h "$DB_HOST" -p 5432; then
  log "starting PostgreSQL $PG_VERSION"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main start
  for _ in $(seq 30); do pg_isready -q -h "$DB_HOST" -p 5432 && break; sleep 0.5; done
fi
if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  log "starting Redis"
  $SUDO mkdir -p /var/lib/redis /var/log/redis
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/twinsite.log
  for _ in $(seq 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.2; done
fi

psql_admin() { psql -h "$DB_HOST" -U "$DB_USER" -d postgres -tAq "$@"; }
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != 1 ]; then
  log "creating database $DB_NAME"
  psql_admin -c "CREATE DATABASE \"$DB_NAME\""
fi
# The migration creates the extension too; doing it here gives a clear error early.
PGOPTIONS="--client-min-messages=warning" psql -h "$DB_HOST" -U "$DB_USER" -d "$DB_NAME" -tAq -c "CREATE EXTENSION IF NOT EXISTS vector"
