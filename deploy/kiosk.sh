#!/bin/sh
# The reception kiosk or counter screen: Chromium in kiosk mode under the cage compositor,
# started at boot by dmed-kiosk.service. The URL comes from /etc/dmed/kiosk.env.
set -eu
url=${DMED_KIOSK_URL:-http://127.0.0.1:8080/ui/kiosk/}
exec cage -- chromium --kiosk --noerrdialogs --disable-translate --no-first-run \
  --disable-features=TranslateUI --overscroll-history-navigation=0 "$url"
