#!/usr/bin/env bash
# Runs every test of ssehub on a fresh Debian machine: installs the real clients the
# tests drive (curl, nc, redis-server, nginx, caddy, PyJWT, jsonwebtoken, Symfony's
# Mercure publisher, systemd's tools, Chromium) when they are missing, then runs the unit,
# integration, doc and browser tests. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

need=()
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v nc >/dev/null 2>&1 || need+=(netcat-openbsd)
# Real Redis for the broker's tests (each test starts its own on a unix socket).
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# Sentinel failovers (tests/sentinel.rs) and the TLS test's CA and certificates.
command -v redis-sentinel >/dev/null 2>&1 || need+=(redis-sentinel)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# tests/daemon.rs: systemd-socket-activate and systemd-analyze (no running systemd needed),
# chroot or unshare and ldd for the empty-root test of the static binary.
{ command -v systemd-socket-activate && command -v systemd-analyze; } >/dev/null 2>&1 \
  || need+=(systemd)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
command -v ldd >/dev/null 2>&1 || need+=(libc-bin)
# tests/mercure_tokens.rs makes its RS256 and ES256 key pairs with Debian's openssl.
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# Chromium for tests/proxy.rs (twelve tabs through Caddy over HTTP/2) and the browser test.
[ -x "${CHROMIUM_BIN:-/usr/bin/chromium}" ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}"
  apt_install "${need[@]}"
fi

# Real reverse proxies for tests/proxy.rs: each test starts its own nginx and caddy as
# this user; the packages' system services are not wanted (and both would take port 80,
# failing the install), so a policy-rc.d keeps apt from starting them.
proxies=()
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || proxies+=(nginx)
command -v caddy >/dev/null 2>&1 || proxies+=(caddy)
if [ ${#proxies[@]} -gt 0 ]; then
  echo "test.sh: installing ${proxies[*]} (services not started)"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  policy=/usr/sbin/policy-rc.d
  created=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod +x "$policy"
    created=1
  fi
  status=0
  apt_install "${proxies[@]}" || status=$?
  [ -z "$created" ] || $sudo rm -f "$policy"
  [ "$status" = 0 ] || exit "$status"
fi

# tests/auth.rs mints its tokens with independent libraries: Python's PyJWT and Node's
# jsonwebtoken (from tests/browser's lockfile, beside playwright-core).
command -v python3 >/dev/null 2>&1 || apt_install python3 python3-pip
if ! python3 -c 'import jwt' 2>/dev/null; then
  echo "test.sh: installing PyJWT (pip)"
  python3 -m pip install --quiet pyjwt 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages pyjwt 2>/dev/null \
    || apt_install python3-jwt
fi
# PyJWT signs RS256 and ES256 with the cryptography package.
if ! python3 -c 'import cryptography' 2>/dev/null; then
  echo "test.sh: installing cryptography (pip)"
  python3 -m pip install --quiet cryptography 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages cryptography 2>/dev/null \
    || apt_install python3-cryptography
fi
# tests/mercure.rs publishes through Symfony's own Mercure publisher (Debian's package).
if ! command -v php >/dev/null 2>&1 || [ ! -f /usr/share/php/Symfony/Component/Mercure/autoload.php ]; then
  echo "test.sh: installing php-cli and php-symfony-mercure (apt)"
  apt_install php-cli php-symfony-mercure
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "test.sh: installing nodejs and npm (apt)"
  apt_install nodejs npm
fi
if [ ! -d tests/browser/node_modules/jsonwebtoken ] || [ ! -d tests/browser/node_modules/playwright-core ]; then
  echo "test.sh: installing jsonwebtoken and playwright-core (npm ci)"
  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi

# Subscribers in the tests each hold a descriptor.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

# Both packages: the server and its library (root), the soak tool (soak/).
cargo test --workspace --all-targets
cargo test --workspace --doc

# The live page in headless Chromium (installs chromium and playwright-core if missing).
scripts/browser-test.sh
