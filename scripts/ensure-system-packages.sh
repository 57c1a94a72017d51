#!/usr/bin/env bash
# Install the Debian packages a profile needs, only those missing; fast when all present.
#   scripts/ensure-system-packages.sh runtime   what the portal needs to run (make run, make serve)
#   scripts/ensure-system-packages.sh test      the runtime packages plus the test tools (make test)
#   scripts/ensure-system-packages.sh <profile> --list   print the profile's packages and exit
# Runtime:
#   fonts-noto-cjk           Chinese fonts for PDFs (WeasyPrint)
#   libharfbuzz-subset0      font subsetting for WeasyPrint (0.1 s instead of 8 s a page)
#   libpango-1.0-0 libpangoft2-1.0-0  WeasyPrint's text layout
#   postgresql-client        pg_dump / pg_restore for backup and restore
# Test:
#   chromium                 end-to-end tests (Playwright drives Debian's Chromium)
#   poppler-utils            pdftoppm for document previews
set -euo pipefail
RUNTIME=(fonts-noto-cjk libharfbuzz-subset0 libpango-1.0-0 libpangoft2-1.0-0 postgresql-client)
TEST=(chromium poppler-utils)
profile=${1:-runtime}
case "$profile" in
  runtime) PACKAGES=("${RUNTIME[@]}") ;;
  test) PACKAGES=("${RUNTIME[@]}" "${TEST[@]}") ;;
  *) echo "unknown profile: $profile (runtime or test)" >&2; exit 2 ;;
esac
if [ "${2:-}" = "--list" ]; then
  printf '%s\n' "${PACKAGES[@]}"
  exit 0
fi
missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages: ${missing[*]} (run as root or: sudo apt-get install ${missing[*]})" >&2
  exit 0
fi
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || true
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
