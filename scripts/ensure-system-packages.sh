#!/usr/bin/env bash
# Install the Debian packages the portal needs, only those missing; fast when all present.
#   fonts-noto-cjk           Chinese fonts for PDFs (WeasyPrint) and screenshots
#   libharfbuzz-subset0      font subsetting for WeasyPrint (0.1 s instead of 8 s a page)
#   libpango-1.0-0 libpangoft2-1.0-0  WeasyPrint's text layout
#   chromium                 end-to-end tests (Playwright drives Debian's Chromium)
#   poppler-utils            pdftoppm for document previews
#   postgresql-client        pg_dump / pg_restore for backup and restore
set -euo pipefail
PACKAGES=(fonts-noto-cjk libharfbuzz-subset0 libpango-1.0-0 libpangoft2-1.0-0 chromium poppler-utils postgresql-client)
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
