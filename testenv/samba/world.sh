#!/usr/bin/env bash
# world.sh - the throw-away Active Directory world of kerberos_exporter's integration tests.
#
#   world.sh up      start the world; does nothing when the world in $KERBEROS_TESTENV_DIR is
#                    already up and healthy, otherwise wipes that directory and provisions anew
#   world.sh down    stop both domain controllers (by PID) and wait until they have exited
#   world.sh status  print the state of both domain controllers; exit 0 only when healthy
#   world.sh reset   down, wipe, up (use it after a test left the directory in a changed state)
#
# The world: a Samba AD DC (Debian's packages) for realm CORP.TEST on 127.0.0.1 (DC1), the
# fixtures of fixtures.sh, and a copy of DC1's directory served on 127.0.0.2 (DC2) with its
# clock shifted by DC2_SKEW_SECONDS through libfaketime. Loopback only, no DNS forwarder.
# Everything (databases, configs, keytabs, logs) lives under $KERBEROS_TESTENV_DIR
# (default /tmp/kerberos-testenv). Needs root: the DCs bind ports 53, 88, 389, ...
# Installs its Debian packages when missing (apt-get), as CI starts from a fresh Debian 12.
set -Eeuo pipefail

DIR=${KERBEROS_TESTENV_DIR:-/tmp/kerberos-testenv}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

REALM=CORP.TEST
NETBIOS=CORP
DNSDOMAIN=corp.test
BASEDN=DC=corp,DC=test
DC_HOST=dc1
ADMIN_USER=Administrator
ADMIN_PASSWORD='Passw0rd!Test123'
SVC_PASSWORD='Passw0rd!Svc1'
WRONGACCT_PASSWORD='Passw0rd!Wrong1' # see add_users in fixtures.sh
MONITOR_USER=krbmon
DC1_IP=127.0.0.1
DC2_IP=127.0.0.2
DC2_SKEW_SECONDS=420 # +7 minutes: beyond Kerberos' default 5 minute tolerance

DC1=$DIR/dc1
DC2=$DIR/dc2
CONF1=$DC1/etc/smb.conf
CONF2=$DC2/etc/smb.conf
LOGS=$DIR/logs
KEYTABS=$DIR/keytabs
KRB5_CONF=$DIR/krb5.conf
KRB5_CONF_SKEWED=$DIR/krb5-skewed.conf
CA_CERT=$DC1/private/tls/ca.pem
ENV_FILE=$DIR/world.env
STAMP=$DIR/.ready
MARKER=$DIR/.kerberos-testenv
LOCK_FILE=$DIR.lock # beside, not inside, the directory that gets wiped

PACKAGES=(samba samba-ad-dc samba-ad-provision winbind krb5-user ldap-utils ldb-tools
	libfaketime openssl procps)

export LDAPTLS_CACERT=$CA_CERT

T0=$(date +%s.%N)
CURRENT_LOG=""

say() { echo "world: $*"; }
# timing lines: "world: timing <step> <seconds>s (total <seconds>s)"
STEP_T=$T0
timing() {
	local now
	now=$(date +%s.%N)
	say "$(awk -v s="$STEP_T" -v n="$now" -v t="$T0" -v what="$1" \
		'BEGIN { printf "timing %-12s %6.1fs (total %.1fs)", what, n - s, n - t }')"
	STEP_T=$now
}
die() {
	echo "world: ERROR: $*" >&2
	if [ -n "$CURRENT_LOG" ] && [ -s "$CURRENT_LOG" ]; then
		echo "world: last lines of $CURRENT_LOG:" >&2
		tail -n 25 "$CURRENT_LOG" | sed 's/^/    /' >&2
	fi
	[ -d "$LOGS" ] && echo "world: all logs are in $LOGS" >&2
	exit 1
}
on_err() { die "command failed (line $1): $2"; }
trap 'on_err "$LINENO" "$BASH_COMMAND"' ERR

# run LOGNAME CMD...: run CMD with its output appended to $LOGS/LOGNAME.log
run() {
	local log=$LOGS/$1.log
	shift
	CURRENT_LOG=$log
	echo "+ $*" >>"$log"
	"$@" >>"$log" 2>&1 || die "failed: $* (exit $?)"
}

# samba-tool against DC1's local database (as system; no LDAP, no credentials)
st() { run "${FIXLOG:-fixtures}" samba-tool "$@" -s "$CONF1"; }

# ---------------------------------------------------------------- packages

install_packages() {
	local missing=() p
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	[ "$(id -u)" -eq 0 ] || die "packages missing (${missing[*]}) and not root: cannot apt-get install"
	say "installing ${missing[*]} (log $LOGS/apt.log)"
	CURRENT_LOG=$LOGS/apt.log
	# keep Debian's own samba/winbind services from starting: the world runs its own daemons
	local policy=/usr/sbin/policy-rc.d created_policy=0 rc=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && created_policy=1
	fi
	{
		apt-get update &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
	} >>"$CURRENT_LOG" 2>&1 </dev/null || rc=$?
	[ "$created_policy" = 1 ] && rm -f "$policy"
	[ "$rc" = 0 ] || die "apt-get install ${missing[*]} failed (exit $rc)"
	timing apt
}

# ---------------------------------------------------------------- domain controllers

pid_of() { # pid of the samba root process of DC dir $1, if running
	local f=$1/run/samba.pid pid
	[ -f "$f" ] || return 1
	pid=$(tr -dc 0-9 <"$f")
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = samba ] || return 1 # a reused PID is not ours
	echo "$pid"
}

stop_dc() { # stop_dc DCDIR NAME: SIGTERM the samba root process, wait until all of it has exited
	local pid i
	pid=$(pid_of "$1") || return 0
	# 'samba -D' is a session leader; its children (ldap, kdc, dns, winbindd, smbd ...) share
	# its session and leave with it. Wait for the whole session, so that the ports are free.
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 300); do
		[ -z "$(ps -o pid= --sid "$pid" 2>/dev/null)" ] && break
		sleep 0.05
	done
	if [ -n "$(ps -o pid= --sid "$pid" 2>/dev/null)" ]; then
		say "$2 (pid $pid) still running 15s after SIGTERM: SIGKILL to its session"
		ps -o pid= --sid "$pid" | xargs -r kill -KILL 2>/dev/null || true
		sleep 0.5
	fi
	say "$2 stopped (pid $pid)"
}

stop_both() { # both DCs at once: samba's root process takes ~2 s to leave after SIGTERM
	stop_dc "$DC2" DC2 &
	local p=$!
	stop_dc "$DC1" DC1
	wait "$p"
}

start_dc1() {
	samba -D -s "$CONF1" </dev/null 9>&- >>"$LOGS/dc1-start.log" 2>&1 ||
		die "samba for DC1 did not start; see $LOGS/dc1-start.log and $LOGS/dc1-samba.log"
}

faketime_lib() {
	local lib
	lib=$(dpkg -L libfaketime 2>/dev/null | grep '/libfaketimeMT\.so\.1$' | head -n1)
	[ -n "$lib" ] || die "libfaketimeMT.so.1 not found (package libfaketime)"
	echo "$lib"
}

start_dc2() {
	# LD_PRELOAD, not the faketime wrapper: the wrapper waits for all descendants of 'samba -D'.
	# LDB_MODULES_DISABLE_DEEPBIND=1: ldb modules are dlopen()ed with RTLD_DEEPBIND and would
	# bypass the preloaded clock, leaving rootDSE currentTime unshifted (the KDC is shifted anyway).
	local lib
	lib=$(faketime_lib)
	LDB_MODULES_DISABLE_DEEPBIND=1 LD_PRELOAD=$lib FAKETIME="+${DC2_SKEW_SECONDS}s" \
		samba -D -s "$CONF2" </dev/null 9>&- >>"$LOGS/dc2-start.log" 2>&1 ||
		die "samba for DC2 did not start; see $LOGS/dc2-start.log and $LOGS/dc2-samba.log"
}

wait_ldap() { # wait_ldap IP NAME: until both ldap:// and ldaps:// answer the rootDSE
	local url i
	for url in "ldap://$1" "ldaps://$1"; do
		for i in $(seq 600); do
			ldapsearch -x -H "$url" -s base -b '' currentTime >/dev/null 2>&1 && break
			[ "$i" = 600 ] && die "$2: $url did not answer within 60s; see $LOGS/${2,,}-samba.log"
			sleep 0.1
		done
	done
}

wait_kdc() { # wait_kdc KRB5CONF NAME: until the KDC answers an AS-REQ (any answer, even an error)
	local i out
	for i in $(seq 300); do
		out=$(KRB5_CONFIG=$1 KRB5CCNAME=FILE:$DIR/tmp/ccache-probe kinit -k -t "$KEYTABS/$MONITOR_USER.keytab" \
			"$MONITOR_USER@$REALM" 2>&1 </dev/null) && return 0
		case $out in *"Cannot contact any KDC"* | *"Connection refused"*) ;; *) return 0 ;; esac
		sleep 0.1
	done
	die "$2: KDC did not answer within 30s: $out"
}

# ---------------------------------------------------------------- provisioning

wipe() {
	case $DIR in
	/ | /tmp | /tmp/ | "" | /root | /home | /usr | /var | /etc) die "refusing to use $DIR as state directory" ;;
	/*) ;;
	*) die "KERBEROS_TESTENV_DIR must be an absolute path, not '$DIR'" ;;
	esac
	if [ -d "$DIR" ] && [ -n "$(ls -A "$DIR")" ] && [ ! -e "$MARKER" ]; then
		die "$DIR exists, is not empty and was not made by world.sh: refusing to delete it"
	fi
	rm -rf "$DIR"
	mkdir -p "$DIR" "$LOGS" "$KEYTABS" "$DIR/tmp"
	touch "$MARKER"
}

make_tls() {
	# The DC's own CA and LDAPS certificate. Samba would generate a self-signed pair on first
	# start, but with the host name only in the subject CN, which Go's crypto/x509 does not
	# accept; this one carries DNS and IP subject alternative names for both DCs.
	local tls=$DC1/private/tls
	mkdir -p "$tls"
	CURRENT_LOG=$LOGS/tls.log
	(
		cd "$tls"
		openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
			-subj "/O=kerberos_exporter testenv/CN=$REALM test CA" \
			-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
		openssl req -newkey rsa:2048 -nodes -keyout key.pem -out dc.csr -subj "/CN=$DC_HOST.$DNSDOMAIN"
		printf '%s\n' "subjectAltName=DNS:$DC_HOST.$DNSDOMAIN,DNS:$DC_HOST,DNS:$DNSDOMAIN,DNS:localhost,IP:$DC1_IP,IP:$DC2_IP" \
			"extendedKeyUsage=serverAuth" "keyUsage=critical,digitalSignature,keyEncipherment" \
			"basicConstraints=CA:FALSE" >ext.cnf
		openssl x509 -req -in dc.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
			-extfile ext.cnf -out cert.pem
		rm -f ca.key ca.srl dc.csr ext.cnf
		chmod 600 key.pem # samba refuses a private key readable by others
	) >>"$CURRENT_LOG" 2>&1 || die "could not create the TLS certificates"
}

provision_dc1() {
	: >"$DIR/empty.conf"
	# -s empty.conf: otherwise provision copies the host's /etc/samba/smb.conf shares and paths
	run provision samba-tool domain provision -s "$DIR/empty.conf" --targetdir="$DC1" \
		--realm=$REALM --domain=$NETBIOS --host-name=$DC_HOST --server-role=dc \
		--dns-backend=SAMBA_INTERNAL --use-rfc2307 --adminpass="$ADMIN_PASSWORD" \
		--option="interfaces=$DC1_IP" --option="bind interfaces only=yes" \
		--option="disable netbios=yes" --option="dns update command=/bin/true" \
		--option="log file=$LOGS/dc1-samba.log" \
		--option="pid directory=$DC1/run" --option="ncalrpc dir=$DC1/run/ncalrpc" \
		--option="winbindd socket directory=$DC1/run/winbindd" \
		--option="ntp signd socket directory=$DC1/ntp_signd"
	# provision copies the host's resolv.conf nameserver into 'dns forwarder' and has no option
	# against it: delete it, so that the internal DNS never asks anything off this machine.
	sed -i '/^[[:space:]]*dns forwarder/d' "$CONF1"
	# simple binds over plain ldap:// (else "BindSimple: Transport encryption required");
	# given to provision as --option it is silently dropped, so it is edited in.
	sed -i 's/^\[global\]$/[global]\n\tldap server require strong auth = no/' "$CONF1"
	grep -q 'dns forwarder' "$CONF1" && die "could not remove 'dns forwarder' from $CONF1"
	mkdir -p "$DC1/run" "$DC1/cache"
	make_tls
}

write_krb5_confs() { # krb5.conf: KDC by address only, no DNS, TCP first, no clock correction
	local conf kdc
	for conf in "$KRB5_CONF" "$KRB5_CONF_SKEWED"; do
		kdc=$DC1_IP
		[ "$conf" = "$KRB5_CONF_SKEWED" ] && kdc=$DC2_IP
		cat >"$conf" <<EOF
# written by testenv/samba/world.sh: realm $REALM, KDC $kdc:88 only, no DNS lookups
[libdefaults]
	default_realm = $REALM
	dns_lookup_realm = false
	dns_lookup_kdc = false
	dns_canonicalize_hostname = false
	rdns = false
	udp_preference_limit = 0
	kdc_timesync = 0
	forwardable = true
	ignore_acceptor_hostname = false

[realms]
	$REALM = {
		kdc = $kdc:88
		admin_server = $kdc:464
		kpasswd_server = $kdc:464
		default_domain = $DNSDOMAIN
	}

[domain_realm]
	.$DNSDOMAIN = $REALM
	$DNSDOMAIN = $REALM
EOF
	done
}

make_dc2() {
	# A consistent copy: DC1 is stopped while its directory is copied (several tdb files that
	# samba's background tasks may write to). The copy keeps DC1's identity (same DC object,
	# keys, krbtgt); no replication runs between the two, so later changes stay on DC1 only.
	stop_dc "$DC1" DC1
	mkdir -p "$DC2"
	CURRENT_LOG=$LOGS/dc2-copy.log
	(cd "$DC1" && tar --exclude=./run --exclude=./cache --exclude=./msg.sock --exclude=./msg.lock \
		--exclude=ldapi --exclude=socket --exclude=pipe -cf - .) 2>>"$CURRENT_LOG" |
		(cd "$DC2" && tar -xf -) 2>>"$CURRENT_LOG" || die "could not copy $DC1 to $DC2"
	mkdir -p "$DC2/run" "$DC2/cache"
	sed -i "s#$DC1/#$DC2/#g; s#$DC1\$#$DC2#; s#dc1-samba.log#dc2-samba.log#" "$CONF2"
	# written as address/mask: a bare 127.0.0.2 is no interface's address (lo has 127.0.0.1/8),
	# and samba would log "no network interfaces found" and listen nowhere
	sed -i "s#^\([[:space:]]*interfaces = \).*#\1$DC2_IP/8#" "$CONF2"
	# smbd does not listen on 127.0.0.2 and would clash with DC1 on 127.0.0.1:445: no file server
	sed -i 's/^\[global\]$/[global]\n\tserver services = -s3fs/' "$CONF2"
	grep -q "$DC1/" "$CONF2" && die "$CONF2 still refers to $DC1"
	start_dc1
	start_dc2
	wait_ldap $DC1_IP DC1
	wait_ldap $DC2_IP DC2
}

write_env() {
	local tmp=$ENV_FILE.tmp
	cat >"$tmp" <<EOF
# written by testenv/samba/world.sh; read by testenv/world (Go)
DIR=$DIR
REALM=$REALM
NETBIOS=$NETBIOS
DOMAIN=$DNSDOMAIN
BASE_DN=$BASEDN
DC_HOST=$DC_HOST.$DNSDOMAIN
DC1=$DC1_IP
DC2=$DC2_IP
DC2_SKEW_SECONDS=$DC2_SKEW_SECONDS
KRB5_CONF=$KRB5_CONF
KRB5_CONF_SKEWED=$KRB5_CONF_SKEWED
CA_CERT=$CA_CERT
SMB_CONF=$CONF1
SMB_CONF_DC2=$CONF2
ADMIN_USER=$ADMIN_USER
ADMIN_PASSWORD=$ADMIN_PASSWORD
SVC_PASSWORD=$SVC_PASSWORD
WRONGACCT_PASSWORD=$WRONGACCT_PASSWORD
MONITOR_USER=$MONITOR_USER
MONITOR_PASSWORD=$SVC_PASSWORD
MONITOR_KEYTAB=$KEYTABS/$MONITOR_USER.keytab
KEYTAB_DIR=$KEYTABS
EOF
	mv "$tmp" "$ENV_FILE"
}

version() { cat "$HERE/world.sh" "$HERE/fixtures.sh" | sha256sum | cut -c1-16; }

# healthy: provisioned by this version of the scripts, both DCs running and answering LDAP,
# DC1's KDC issuing a TGT to the monitor account, DC2's clock still skewed.
healthy() {
	[ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(version)" ] || { echo "not provisioned (or by another version of the scripts)"; return 1; }
	pid_of "$DC1" >/dev/null || { echo "DC1 not running"; return 1; }
	pid_of "$DC2" >/dev/null || { echo "DC2 not running"; return 1; }
	ldapsearch -x -H "ldaps://$DC1_IP" -s base -b '' currentTime >/dev/null 2>&1 || { echo "DC1 LDAPS not answering"; return 1; }
	local t
	t=$(ldapsearch -LLL -x -H "ldap://$DC2_IP" -s base -b '' currentTime 2>/dev/null | sed -n 's/^currentTime: \([0-9]\{14\}\).*/\1/p')
	[ -n "$t" ] || { echo "DC2 LDAP not answering"; return 1; }
	local skew=$(($(date -u -d "${t:0:8} ${t:8:2}:${t:10:2}:${t:12:2}" +%s) - $(date -u +%s)))
	[ "$skew" -gt $((DC2_SKEW_SECONDS - 30)) ] && [ "$skew" -lt $((DC2_SKEW_SECONDS + 30)) ] || { echo "DC2 clock skew is ${skew}s, not ${DC2_SKEW_SECONDS}s"; return 1; }
	KRB5_CONFIG=$KRB5_CONF KRB5CCNAME=FILE:$DIR/tmp/ccache-health kinit -k -t "$KEYTABS/$MONITOR_USER.keytab" \
		"$MONITOR_USER@$REALM" >/dev/null 2>&1 </dev/null || { echo "DC1 KDC refuses the monitor account"; return 1; }
	return 0
}

# ---------------------------------------------------------------- commands

cmd_up() {
	local why
	if why=$(healthy); then
		say "already up and healthy in $DIR (DC1 $DC1_IP, DC2 $DC2_IP skewed +${DC2_SKEW_SECONDS}s)"
		return 0
	fi
	say "provisioning in $DIR ($why)"
	[ "$(id -u)" -eq 0 ] || die "must run as root (the DCs bind ports 53, 88, 389 and write as system)"
	stop_both
	wipe
	timing stop+wipe
	install_packages
	provision_dc1
	timing provision
	write_krb5_confs
	start_dc1
	wait_ldap $DC1_IP DC1
	timing start-dc1
	# shellcheck source=fixtures.sh
	. "$HERE/fixtures.sh"
	fixtures_all # ends with the duplicate SPN (raw write), see fixtures.sh
	make_dc2
	timing start-dc2
	wait_kdc "$KRB5_CONF" DC1
	wait_kdc "$KRB5_CONF_SKEWED" DC2
	write_env
	version >"$STAMP"
	why=$(healthy) || die "world provisioned but not healthy: $why"
	timing health
	say "up in $DIR: DC1 $DC1_IP (pid $(pid_of "$DC1")), DC2 $DC2_IP (pid $(pid_of "$DC2"), clock +${DC2_SKEW_SECONDS}s)"
}

cmd_down() {
	stop_both
	rm -f "$STAMP"
	timing down
}

cmd_status() {
	local n d ip pid
	for n in 1 2; do
		d=$DIR/dc$n
		ip=$DC1_IP
		[ $n = 2 ] && ip=$DC2_IP
		if pid=$(pid_of "$d"); then say "DC$n $ip running, pid $pid"; else say "DC$n $ip not running"; fi
	done
	local why
	if why=$(healthy); then
		say "healthy ($DIR)"
	else
		say "not healthy: $why"
		return 1
	fi
}

main() {
	local cmd=${1:-}
	case $cmd in
	up | down | status | reset) ;;
	*)
		echo "usage: $0 up|down|status|reset   (state directory: \$KERBEROS_TESTENV_DIR, now $DIR)" >&2
		exit 2
		;;
	esac
	exec 9>"$LOCK_FILE"
	# one world.sh at a time per state directory: test packages run in parallel and all call 'up'
	flock -w 900 9 || die "could not lock $LOCK_FILE within 15 minutes"
	case $cmd in
	up) cmd_up ;;
	down) cmd_down ;;
	status) cmd_status ;;
	reset)
		cmd_down
		rm -f "$STAMP"
		cmd_up
		;;
	esac
}

main "$@"
