#!/bin/sh
# Install a DMED Edge node on a fresh Raspberry Pi OS (Debian 12 bookworm) as root:
#   a venv under /opt/dmed, the system user dmed, data under /var/lib/dmed, configuration
#   in /etc/dmed, systemd units (server, nightly backup, daily health check), journald
#   limits, and with --kiosk the reception kiosk (Chromium in kiosk mode under cage).
#
#   sudo deploy/install.sh [--kiosk URL] [--root-cert national-root.pem]
#
# DMED_ROOT installs into another root (an image being prepared, or a test); there nothing
# is started and no user is created (systemd-sysusers creates it at first boot from
# /usr/lib/sysusers.d/dmed.conf). Other variables pass to deploy/build.sh.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=${DMED_ROOT:-/}
root=${root%/}
source_dir=${DMED_SOURCE:-$(cd "$here/.." && pwd)}
kiosk_url=""
root_cert=""
while [ "$#" -gt 0 ]; do
  case $1 in
    --kiosk) kiosk_url=${2:?"--kiosk needs the screen's URL, e.g. https://tas-pol-012.local:8443/ui/kiosk/"}; shift 2 ;;
    --root-cert) root_cert=${2:?"--root-cert needs the national root's PEM file"}; shift 2 ;;
    *) echo "usage: $0 [--kiosk URL] [--root-cert national-root.pem]" >&2; exit 2 ;;
  esac
done

venv="$root/opt/dmed"
"$here/build.sh" "$venv" "$source_dir"

install -d -m 0755 "$root/etc/dmed" "$root/etc/systemd/system" \
  "$root/usr/lib/sysusers.d" "$root/etc/systemd/journald.conf.d"
install -d -m 0750 "$root/var/lib/dmed" "$root/var/lib/dmed/backups"
for unit in "$here"/systemd/*.service "$here"/systemd/*.timer; do
  install -m 0644 "$unit" "$root/etc/systemd/system/"
done
install -m 0644 "$here/systemd/dmed.sysusers" "$root/usr/lib/sysusers.d/dmed.conf"
install -m 0644 "$here/systemd/journald-dmed.conf" "$root/etc/systemd/journald.conf.d/dmed.conf"
install -m 0755 "$here/kiosk.sh" "$venv/bin/dmed-kiosk"
if [ ! -e "$root/etc/dmed/dmed-node.json" ]; then
  printf '{\n  "DATABASE": "/var/lib/dmed/node.db"\n}\n' > "$root/etc/dmed/dmed-node.json"
fi
if [ -n "$kiosk_url" ]; then
  printf 'DMED_KIOSK_URL=%s\n' "$kiosk_url" > "$root/etc/dmed/kiosk.env"
fi
# Terminal set-up: trust the national root, so nodes' HTTPS shows no warning (the system
# store for tools, and the kiosk browser's NSS database, filled by dmed-kiosk at start).
if [ -n "$root_cert" ]; then
  install -d -m 0755 "$root/usr/local/share/ca-certificates"
  install -m 0644 "$root_cert" "$root/usr/local/share/ca-certificates/dmed-national-root.crt"
  install -m 0644 "$root_cert" "$root/etc/dmed/national-root.pem"
fi

if [ "$root" = "" ]; then
  systemd-sysusers
  chown -R dmed:dmed /var/lib/dmed
  if [ -n "$root_cert" ]; then update-ca-certificates; fi
  systemctl daemon-reload
  systemctl enable --now dmed-node.service dmed-node-backup.timer dmed-node-doctor.timer \
    dmed-node-housekeeping.timer
  if [ -n "$kiosk_url" ]; then
    apt-get install -y --no-install-recommends cage chromium libnss3-tools
    systemctl enable --now dmed-kiosk.service
  fi
  echo "DMED Edge node installed; enrol it: dmed-node enrol --db /var/lib/dmed/node.db ..."
else
  echo "DMED Edge node installed into $root (nothing started)"
fi
