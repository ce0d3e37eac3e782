#!/bin/sh
# The reception kiosk or counter screen: Chromium in kiosk mode under the cage compositor,
# started at boot by dmed-kiosk.service. From /etc/dmed/kiosk.env: DMED_KIOSK_URL, or
# DMED_NODE_FINGERPRINT alone, or nothing on a LAN with one node (the node is then found
# on the LAN and must prove its key).
set -eu
path=${DMED_KIOSK_PATH:-/ui/kiosk/}
url=${DMED_KIOSK_URL:-}
if [ -z "$url" ] && [ -n "${DMED_NODE_FINGERPRINT:-}" ]; then
  base=$(/opt/dmed/bin/dmed-node discover --fingerprint "$DMED_NODE_FINGERPRINT")
  url="$base$path"
elif [ -z "$url" ]; then  # nothing given: the LAN's only node, if it proves its key
  base=$(/opt/dmed/bin/dmed-node discover --only) && url="$base$path"
fi
url=${url:-https://127.0.0.1:8443$path}
# Trust only the national root in the browser's NSS database (installed by install.sh).
nssdb="$HOME/.pki/nssdb"
if [ -f /etc/dmed/national-root.pem ] && command -v certutil >/dev/null; then
  mkdir -p "$nssdb"
  [ -f "$nssdb/cert9.db" ] || certutil -d "sql:$nssdb" -N --empty-password
  certutil -d "sql:$nssdb" -L -n "DMED national root" >/dev/null 2>&1 \
    || certutil -d "sql:$nssdb" -A -t "C,," -n "DMED national root" -i /etc/dmed/national-root.pem
fi
exec cage -- chromium --kiosk --noerrdialogs --disable-translate --no-first-run \
  --disable-features=TranslateUI --overscroll-history-navigation=0 "$url"
