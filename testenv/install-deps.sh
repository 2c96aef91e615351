#!/usr/bin/env bash
# Installs what the tests and the demo need from Debian's packages: a Samba AD
# DC and Kerberos/LDAP client tools for the test world, libfaketime for the
# clock-skewed DC, Prometheus/promtool and Alertmanager for the alert and
# dashboard tests, Chromium for the report page test, systemd for
# systemd-analyze (the unit's security score). Needs root.
# Services are not started by the packages (policy-rc.d): the tests start
# their own, on loopback.
set -euo pipefail
packages=(samba samba-ad-dc samba-ad-provision winbind krb5-user ldap-utils ldb-tools faketime
          prometheus prometheus-alertmanager chromium curl systemd)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing packages (${missing[*]}) and not root: install them or run as root" >&2
  exit 1
fi
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  created_policy=1
fi
trap '[ $created_policy = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/kerberos-exporter-apt.log 2>&1 || {
  echo "install-deps: apt-get install failed; last lines of /tmp/kerberos-exporter-apt.log:" >&2
  tail -20 /tmp/kerberos-exporter-apt.log >&2
  exit 1
}
# Debian's samba package may start smbd/nmbd despite policy-rc.d on some
# images; they would hold ports the test DC needs.
for svc in smbd nmbd samba-ad-dc winbind prometheus prometheus-alertmanager; do
  pkill -x "$svc" 2>/dev/null || true
done
echo "install-deps: done"
