#!/usr/bin/env bash
# directory.sh - the forest-wide SPN scan against a large real directory (issue 8, §2, §3, §6).
#
# Provisions (once, cached under $BENCH_DIR) a Samba AD DC of its own, realm BENCH.TEST on
# $BENCH_IP (LDAPS only matters), loaded with $BENCH_ACCOUNTS accounts holding two SPNs each,
# 1% of them duplicating the previous account's first SPN; then prints, from one run:
#   - the exporter's full scan vs a raw 'ldapsearch -E pr=1000' of the same entries (ratio);
#   - an incremental scan after 10 changes vs the full scan (ratio);
#   - the exporter's peak RSS, and the SPN index's heap at 1M SPNs (measured, synthetic).
# Figures, not assertions. Needs root (samba binds ports) and never touches the test world:
# its own state dir, its own address (it can run beside the test world), e.g.
#   BENCH_ACCOUNTS=20000 bash bench/directory.sh
#
# The fast load: the accounts go into sam.ldb with the DC stopped, through all of Samba's
# modules, in one 'ldbadd --nosync -o batch_mode -o transaction_index_cache_size=1000000'
# (no password: no key derivation); the duplicates, which samldb refuses on every path, are
# written into the raw partition file as the test world does for its one duplicate.
set -Eeuo pipefail
cd "$(dirname "$0")/.."

N=${BENCH_ACCOUNTS:-100000}
DIR=$(realpath -m -- "${BENCH_DIR:-/tmp/kte-bench}") # resolved: provision checks it is under /tmp before rm -rf
IP=${BENCH_IP:-127.0.0.5}
# mdb or tdb (Samba's default): only mdb indexes a uSNChanged range, as Active Directory does;
# on tdb every incremental search walks the whole database on the DC
BACKEND=${BENCH_BACKEND:-mdb}
REALM=BENCH.TEST
BASEDN=DC=bench,DC=test
PASS='Passw0rd!Bench1'
CONF=$DIR/dc/etc/smb.conf
export LDAPTLS_REQCERT=never # the DC's self-signed certificate; the exporter gets insecure_skip_verify too

say() { echo "bench: $*"; }
die() { echo "bench: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root"
command -v samba >/dev/null || die "samba is not installed (bash testenv/install-deps.sh)"

pid_of() { # the bench DC's samba root process, if running
	local p
	p=$(tr -dc 0-9 2>/dev/null <"$DIR/dc/run/samba.pid") && [ -n "$p" ] && kill -0 "$p" 2>/dev/null &&
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = samba ] && echo "$p"
}
stop_dc() {
	local pid i
	pid=$(pid_of) || return 0
	kill -TERM "$pid"
	for i in $(seq 300); do
		pgrep -s "$pid" >/dev/null || return 0
		sleep 0.1
	done
	die "samba (pid $pid) did not stop"
}
start_dc() {
	pid_of >/dev/null && return 0
	ldapsearch -x -H "ldap://$IP" -s base -b '' dnsHostName >/dev/null 2>&1 &&
		die "something not started from $DIR already serves LDAP on $IP; stop it or set BENCH_IP"
	samba -D -s "$CONF" </dev/null 9>&- >>"$DIR/samba-start.log" 2>&1 || die "samba did not start; see $DIR/samba-start.log"
	local i
	for i in $(seq 600); do
		ldapsearch -x -H "ldaps://$IP" -s base -b '' dnsHostName >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	die "the bench DC does not answer LDAPS on $IP"
}

ldif() { # the accounts: bNNNNNN in OU=Bench, two SPNs each
	awk -v n="$N" -v base="$BASEDN" 'BEGIN {
		printf "dn: OU=Bench,%s\nobjectClass: organizationalUnit\n\n", base
		for (i = 0; i < n; i++) {
			s = sprintf("b%06d", i)
			printf "dn: CN=%s,OU=Bench,%s\nobjectClass: user\nsAMAccountName: %s\nuserAccountControl: 514\n", s, base, s
			printf "servicePrincipalName: MSSQLSvc/%s.bench.test:1433\nservicePrincipalName: HTTP/%s.bench.test\n\n", s, s
		}
	}'
}
dup_ldif() { # every 100th account (i % 100 == 1) also holds the previous one's MSSQLSvc/ SPN
	awk -v n="$N" -v base="$BASEDN" 'BEGIN {
		for (i = 1; i < n; i += 100)
			printf "dn: CN=b%06d,OU=Bench,%s\nchangetype: modify\nadd: servicePrincipalName\nservicePrincipalName: MSSQLSvc/b%06d.bench.test:1433\n\n", i, base, i - 1
	}'
}

provision() {
	say "provisioning $N accounts in $DIR (cached for the next runs)"
	stop_dc
	ldapsearch -x -H "ldap://$IP" -s base -b '' dnsHostName >/dev/null 2>&1 &&
		die "something not started from $DIR already serves LDAP on $IP; stop it or set BENCH_IP"
	case $DIR in /tmp/?*) rm -rf "$DIR" ;; *) die "BENCH_DIR must be under /tmp, not $DIR" ;; esac
	mkdir -p "$DIR"
	: >"$DIR/empty.conf"
	samba-tool domain provision -s "$DIR/empty.conf" --targetdir="$DIR/dc" --realm=$REALM --domain=BENCH \
		--host-name=benchdc --server-role=dc --dns-backend=NONE --backend-store="$BACKEND" --adminpass="$PASS" \
		--option="interfaces=$IP/8" --option="bind interfaces only=yes" >"$DIR/provision.log" 2>&1 ||
		die "provision failed; see $DIR/provision.log"
	# LDAP only: no SMB, KDC, DNS or RPC servers of its own next to the test world's
	sed -i "s#^\[global\]\$#[global]\n\tserver services = ldap\n\tpid directory = $DIR/dc/run#" "$CONF"
	mkdir -p "$DIR/dc/run" "$DIR/dc/cache" "$DIR/dc/private/tls"
	# samba's own certificate has a negative serial number, which Go's crypto/x509 refuses
	(
		cd "$DIR/dc/private/tls"
		openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 3650 -subj "/CN=benchdc.bench.test" \
			-addext "subjectAltName=DNS:benchdc.bench.test,IP:$IP" -addext extendedKeyUsage=serverAuth
		cp cert.pem ca.pem
		chmod 600 key.pem
	) >"$DIR/tls.log" 2>&1 || die "could not create the TLS certificate; see $DIR/tls.log"
	local t0 t1
	t0=$(date +%s.%N)
	ldif | ldbadd --nosync -o batch_mode -o transaction_index_cache_size=1000000 -H "$DIR/dc/private/sam.ldb" >"$DIR/load.log" 2>&1 ||
		die "ldbadd failed; see $DIR/load.log"
	local partition
	partition=$DIR/dc/private/sam.ldb.d/$(echo "$BASEDN" | tr '[:lower:]' '[:upper:]').ldb
	[ "$BACKEND" = mdb ] && partition="mdb://$partition" || partition="tdb://$partition"
	dup_ldif | ldbmodify -H "$partition" >>"$DIR/load.log" 2>&1 ||
		die "the raw write of the duplicates failed; see $DIR/load.log"
	t1=$(date +%s.%N)
	say "loaded $N accounts ($BACKEND) in $(echo "$t1 - $t0" | bc)s"
	echo "$N $BACKEND" >"$DIR/.accounts"
}

[ "$(cat "$DIR/.accounts" 2>/dev/null)" = "$N $BACKEND" ] || provision
start_dc

URL=ldaps://$IP
dc_cpu() { # CPU seconds (user + system) used so far by the bench DC's samba processes
	local sid
	sid=$(pid_of) || { echo 0; return; }
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v sid="$sid" '{
		sub(/^.*\) /, ""); if ($4 == sid) t += $12 + $13 } END { printf "%.2f", t / 100 }'
}
raw() { # raw ATTRS...: a paged dump of every SPN holder, timed: seconds, entries, DC CPU seconds
	local t0 t1 c0 c1 n
	c0=$(dc_cpu)
	t0=$(date +%s.%N)
	n=$(ldapsearch -LLL -x -H "$URL" -D "Administrator@$REALM" -w "$PASS" -b "$BASEDN" -E pr=1000/noprompt \
		'(servicePrincipalName=*)' "$@" | grep -c '^dn:')
	t1=$(date +%s.%N)
	c1=$(dc_cpu)
	echo "$(echo "$t1 - $t0" | bc) $n $(echo "$c1 - $c0" | bc)"
}
read -r raw_s raw_n raw_cpu < <(raw objectGUID sAMAccountName servicePrincipalName) || true
read -r all_s all_n all_cpu < <(raw) || true
# raw runs in a process substitution: its failure shows only as no entries
[[ ${raw_n:-} =~ ^[1-9][0-9]*$ && ${all_n:-} =~ ^[1-9][0-9]*$ ]] ||
	die "the raw ldapsearch dump read no entries (${raw_n:-none} and ${all_n:-none}); is the bench DC at $URL answering?"
say "raw ldapsearch -E pr=1000 '(servicePrincipalName=*)', the scan's 3 attributes: ${raw_s}s for $raw_n entries, DC CPU ${raw_cpu}s"
say "raw ldapsearch -E pr=1000 '(servicePrincipalName=*)', all attributes:        ${all_s}s for $all_n entries, DC CPU ${all_cpu}s"
go run ./bench/spnscan -url "$URL" -realm "$REALM" -base "$BASEDN" -user "Administrator@$REALM" -password "$PASS" \
	-accounts "$N" -raw-seconds "$raw_s" -raw-cpu "$raw_cpu" -dc-session "$(pid_of)"
