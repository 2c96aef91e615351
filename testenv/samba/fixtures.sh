# fixtures.sh - the accounts, SPNs, delegation settings and DNS records of the AD world.
# Sourced by world.sh (which defines st, run, say, timing, die and the variables used here)
# while DC1 is running on $DC1_IP. Each fixture stands for one failure mode (or the correct
# setup) of the field's Kerberos-for-SQL-Server checklist; testenv/README.md has the table.
#
# Everything goes through Samba's own tools:
#  - ldbadd/ldbmodify on DC1's sam.ldb, through all of Samba's modules (schema, samldb with its
#    SPN uniqueness and userAccountControl checks, password_hash, which derives the AES and RC4
#    keys), as system, for the accounts and their attributes: one batch instead of ~45
#    samba-tool calls at ~0.4 s of Python start-up each. The samba-tool command each line
#    stands for is named beside it;
#  - samba-tool for what needs its logic: RBCD's security descriptor, the password settings
#    object, DNS records (against the running DC), the keytab export;
#  - kinit against the KDC for the lockout.
# One thing cannot be made so: a duplicate SPN, which samldb refuses on every path; it is
# written into the raw partition file, last.
#
# Independent steps run in parallel "lanes", each logging to $LOGS/fixtures-<lane>.log.

# accounts whose keys are exported to $KEYTABS/<sAMAccountName>.keytab
KEYTAB_ACCOUNTS="krbmon sqlsvc_a sqlsvc_b sqlsvc_c sqlsvc_d wrongacct sqldup1 sqldup2 sqlsvc_u
sqlsvc_pt sqlsvc_r sqlsvc_rc4 sqlsvc_dis sqlsvc_lock crmweb alice bob carol SQLE\$ sqlsvc_f sqlsvc_g sqlsvc_h"
LOCK_THRESHOLD=3

# userAccountControl bits
UF_ACCOUNTDISABLE=$((0x2))
UF_NORMAL_ACCOUNT=$((0x200))
UF_WORKSTATION_TRUST_ACCOUNT=$((0x1000))
UF_DONT_EXPIRE_PASSWD=$((0x10000))
UF_TRUSTED_FOR_DELEGATION=$((0x80000))
UF_NOT_DELEGATED=$((0x100000))
UF_TRUSTED_TO_AUTH_FOR_DELEGATION=$((0x1000000))

# the four SPN forms SQL Server registers for a default instance on TCP 1433
sql_spns() { # sql_spns HOST
	printf '%s\n' "MSSQLSvc/$1.$DNSDOMAIN:1433" "MSSQLSvc/$1.$DNSDOMAIN" "MSSQLSvc/$1:1433" "MSSQLSvc/$1"
}

# unicodePwd value: the password in double quotes, UTF-16LE, base64
unicode_pwd() { printf '"%s"' "$1" | iconv -f UTF-8 -t UTF-16LE | base64 -w0; }

# account SAM UAC [ATTRIBUTE=VALUE]...: an LDIF add record for a user in CN=Users, with a
# password; the same as 'samba-tool user add SAM PASSWORD' plus the given attributes.
account() {
	local sam=$1 uac=$2 pw=$SVC_PASSWORD a
	shift 2
	# wrongacct gets a password of its own: RC4 keys are unsalted (MD4 of the password), so with
	# sqlsvc_d's password the RC4 tickets for sqld's SPN would decrypt with sqlsvc_d's keys
	[ "$sam" = wrongacct ] && pw=$WRONGACCT_PASSWORD
	printf 'dn: CN=%s,CN=Users,%s\nobjectClass: user\nsAMAccountName: %s\n' "$sam" "$BASEDN" "$sam"
	printf 'userPrincipalName: %s@%s\nuserAccountControl: %d\nunicodePwd:: %s\n' \
		"$sam" "$DNSDOMAIN" "$uac" "$(unicode_pwd "$pw")"
	for a in "$@"; do printf '%s: %s\n' "${a%%=*}" "${a#*=}"; done
	printf '\n'
}

# hostile_account: the LDIF add record of o'b’r‘$(x)` (base64 in LDIF: it is not ASCII).
hostile_account() {
	local sam=$'o\'b\xe2\x80\x99r\xe2\x80\x98$(x)`'
	b64() { printf '%s' "$1" | base64 -w0; }
	printf 'dn:: %s\nobjectClass: user\nsAMAccountName:: %s\n' "$(b64 "CN=$sam,CN=Users,$BASEDN")" "$(b64 "$sam")"
	printf 'userAccountControl: %d\nunicodePwd:: %s\n' "$((UF_NORMAL_ACCOUNT | UF_NOT_DELEGATED))" "$(unicode_pwd "$SVC_PASSWORD")"
	printf 'servicePrincipalName:: %s\n\n' "$(b64 "HTTP/$sam.$DNSDOMAIN")"
}

spn_attrs() { # spn_attrs SPN...: servicePrincipalName=SPN for each ('samba-tool spn add')
	local s
	for s in "$@"; do printf 'servicePrincipalName=%s\n' "$s"; done
}

accounts_ldif() {
	local N=$UF_NORMAL_ACCOUNT sqlb=MSSQLSvc/sqlb.$DNSDOMAIN
	local IFS=$'\n' # attribute lists below are one per line
	# the exporter's own identity: an ordinary domain user, no rights of its own
	account krbmon $N
	# SQL A, the correct setup: four SPN forms; constrained delegation, Kerberos only (no
	# protocol transition), to SQL B, the linked server's second hop ('samba-tool delegation
	# add-service'); AES128+AES256 ("This account supports Kerberos AES 128/256 bit
	# encryption"): AES tickets. Accounts without msDS-SupportedEncryptionTypes get RC4 tickets
	# with AES session keys.
	account sqlsvc_a $N $(spn_attrs $(sql_spns sqla)) "msDS-AllowedToDelegateTo=$sqlb:1433" \
		"msDS-AllowedToDelegateTo=$sqlb" msDS-SupportedEncryptionTypes=24
	# SQL B, the linked server
	account sqlsvc_b $N $(spn_attrs $(sql_spns sqlb)) msDS-SupportedEncryptionTypes=24
	# SQL C: no SPN at all (clients fall back to NTLM)
	account sqlsvc_c $N
	# SQL D: its SPN is registered on another account
	account sqlsvc_d $N
	account wrongacct $N $(spn_attrs "MSSQLSvc/sqld.$DNSDOMAIN:1433")
	# SQL F: only the FQDN forms, which is what SQL Server registers itself; the configured
	# NetBIOS name's short forms are missing (warnings: TCP clients using the FQDN get Kerberos)
	account sqlsvc_f $N $(spn_attrs "MSSQLSvc/sqlf.$DNSDOMAIN:1433" "MSSQLSvc/sqlf.$DNSDOMAIN")
	# SQL G: the port-less forms are missing (named-pipe clients only; a warning)
	account sqlsvc_g $N $(spn_attrs "MSSQLSvc/sqlg.$DNSDOMAIN:1433" "MSSQLSvc/SQLG:1433")
	# SQL H: healthy, netbios_name configured, no short-name SPN at all
	account sqlsvc_h $N $(spn_attrs "MSSQLSvc/sqlh.$DNSDOMAIN:1433" "MSSQLSvc/sqlh.$DNSDOMAIN")
	# SQL N: a named instance INST1 on a dynamic port, as SQL Server registers one (the
	# instance form and the TCP port form); the stand-in's SQL Browser gives the port
	account sqlsvc_n $N $(spn_attrs "MSSQLSvc/sqln.$DNSDOMAIN:INST1" "MSSQLSvc/sqln.$DNSDOMAIN:49733")
	# duplicate SPN holders; the duplicate itself is written last (make_duplicate_spn)
	account sqldup1 $N
	account sqldup2 $N
	# unconstrained delegation ('samba-tool delegation for-any-service sqlsvc_u on')
	account sqlsvc_u $((N | UF_TRUSTED_FOR_DELEGATION)) $(spn_attrs "MSSQLSvc/sqlu.$DNSDOMAIN:1433")
	# constrained delegation with protocol transition ('delegation for-any-protocol ... on')
	account sqlsvc_pt $((N | UF_TRUSTED_TO_AUTH_FOR_DELEGATION)) $(spn_attrs "MSSQLSvc/sqlpt.$DNSDOMAIN:1433") \
		"msDS-AllowedToDelegateTo=$sqlb:1433"
	# front end that reaches SQL E by resource-based constrained delegation (set on SQLE$)
	account sqlsvc_r $N $(spn_attrs "MSSQLSvc/sqlr.$DNSDOMAIN:1433")
	# RC4 only
	account sqlsvc_rc4 $N $(spn_attrs "MSSQLSvc/sqlrc4.$DNSDOMAIN:1433") msDS-SupportedEncryptionTypes=4
	# disabled ('samba-tool user disable')
	account sqlsvc_dis $((N | UF_ACCOUNTDISABLE)) $(spn_attrs "MSSQLSvc/sqldis.$DNSDOMAIN:1433")
	# locked out: make_lockout, through the KDC
	account sqlsvc_lock $N $(spn_attrs "MSSQLSvc/sqllock.$DNSDOMAIN:1433")
	# web front end behind a load balancer: HTTP SPNs of the balanced name
	account crmweb $N $(spn_attrs "HTTP/crm.$DNSDOMAIN" HTTP/crm)
	# reporting front end reached through a DNS alias (reports CNAME rptnode1): its SPN is
	# registered for the alias only, while Windows clients ask for HTTP/rptnode1.corp.test
	account rptweb $N $(spn_attrs "HTTP/reports.$DNSDOMAIN")
	# an old SQL service account whose password predates the domain's AES support: no
	# msDS-SupportedEncryptionTypes; make_rc4_only_keys strips its AES keys and back-dates
	# pwdLastSet, so the KDC holds only its RC4 key (as Windows does for such accounts);
	# "password never expires", as such accounts have (else the KDC says the password expired)
	account sqlsvc_old $((N | UF_DONT_EXPIRE_PASSWD)) $(spn_attrs "MSSQLSvc/sqlold.$DNSDOMAIN:1433")
	# users whose tickets get delegated: alice is "sensitive and cannot be delegated"
	# ('samba-tool user sensitive alice on'), bob is in Protected Users, carol is ordinary
	account alice $((N | UF_NOT_DELEGATED))
	account bob $N
	account carol $N
	# a hostile name (cmd/kerberos_exporter's TestCheckWithHostileNames): a sensitive user, so
	# that a finding with a script names it, and an SPN, both with characters that try to end
	# a quoted PowerShell string or start a command (U+0027, U+2019, U+2018, $( ), `)
	hostile_account
	# SQL E runs as a gMSA/virtual account: an enabled computer account with a password stands
	# in for it, with a gMSA's dNSHostName and encryption types (RC4+AES, 28). ('samba-tool
	# computer create' makes it disabled, 0x1002, without keys: kvno then says "KDC has no
	# support for encryption type".)
	printf 'dn: CN=SQLE,CN=Computers,%s\nobjectClass: computer\nsAMAccountName: SQLE$\n' "$BASEDN"
	printf 'userAccountControl: %d\nunicodePwd:: %s\ndNSHostName: sqle.%s\n' \
		"$UF_WORKSTATION_TRUST_ACCOUNT" "$(unicode_pwd "$SVC_PASSWORD")" "$DNSDOMAIN"
	printf 'servicePrincipalName: MSSQLSvc/sqle.%s:1433\nmsDS-SupportedEncryptionTypes: 28\n\n' "$DNSDOMAIN"
	# bob into Protected Users ('samba-tool group addmembers')
	printf 'dn: CN=Protected Users,CN=Users,%s\nchangetype: modify\nadd: member\nmember: CN=bob,CN=Users,%s\n\n' \
		"$BASEDN" "$BASEDN"
}

# Bulk SPN holders: BULK_ACCOUNTS accounts in OU=Bulk, each with two HTTP/ SPNs of its own (no
# duplicates, no MSSQLSvc/: they must change neither the duplicate count nor what discovery
# finds), disabled and without a password (no keys to derive: the batch stays fast). They make
# the forest-wide SPN searches run to several pages, as in a real domain.
BULK_ACCOUNTS=300
bulk_ldif() {
	local i sam
	printf 'dn: OU=Bulk,%s\nobjectClass: organizationalUnit\n\n' "$BASEDN"
	for i in $(seq -w 1 $BULK_ACCOUNTS); do
		sam=bulk$i
		printf 'dn: CN=%s,OU=Bulk,%s\nobjectClass: user\nsAMAccountName: %s\nuserAccountControl: %d\n' \
			"$sam" "$BASEDN" "$sam" $((UF_NORMAL_ACCOUNT | UF_ACCOUNTDISABLE))
		printf 'servicePrincipalName: HTTP/%s.%s\nservicePrincipalName: HTTP/%s\n\n' "$sam" "$DNSDOMAIN" "$sam"
	done
}

# ldb_apply TOOL: ldbadd or ldbmodify on DC1's sam.ldb, LDIF on stdin, logged
ldb_apply() {
	local ldif log=$LOGS/${FIXLOG:-fixtures}.log
	ldif=$(cat)
	CURRENT_LOG=$log
	printf '+ %s -H %s\n%s\n' "$1" "$DC1/private/sam.ldb" "$ldif" | sed 's/^unicodePwd:: .*/unicodePwd:: (hidden)/' >>"$log"
	printf '%s\n' "$ldif" | "$1" -H "$DC1/private/sam.ldb" >>"$log" 2>&1 || die "$1 on $DC1/private/sam.ldb failed"
}

make_accounts() {
	# ldbadd takes add records only: the group membership goes through ldbmodify
	accounts_ldif | awk -v RS= -v ORS='\n\n' '!/changetype: modify/' | ldb_apply ldbadd
	accounts_ldif | awk -v RS= -v ORS='\n\n' '/changetype: modify/' | ldb_apply ldbmodify
	bulk_ldif | FIXLOG=fixtures-bulk ldb_apply ldbadd
	# RBCD: SQLE$'s msDS-AllowedToActOnBehalfOfOtherIdentity allows sqlsvc_r. Samba 4.17 lets
	# only system write it (local samba-tool; over LDAP: "can only be modified as system").
	st delegation add-principal 'SQLE$' sqlsvc_r
}

# DNS records in Samba's internal DNS, through the running DC's RPC interface.
DNS_HOSTS="sqla:11 sqlb:12 sqlc:13 sqld:14 sqle:15 crm:20 sqlf:21 sqlg:22 sqlh:23 rptnode1:24 sqln:25"
# aliases (CNAME): crmalias -> crm (HTTP/crm.corp.test is on crmweb: healthy); reports ->
# rptnode1 (rptweb holds HTTP/reports.corp.test only: clients ask for HTTP/rptnode1...)
DNS_ALIASES="crmalias:crm reports:rptnode1"
make_dns_forward() {
	local auth=(-U "$ADMIN_USER%$ADMIN_PASSWORD") entry
	# the DC itself: provision never registers 127.0.0.1 (it drops that address on purpose)
	st dns add "$DC1_IP" "$DNSDOMAIN" "$DC_HOST" A "$DC1_IP" "${auth[@]}"
	st dns add "$DC1_IP" "$DNSDOMAIN" @ A "$DC1_IP" "${auth[@]}"
	for entry in $DNS_HOSTS sqlm:19; do
		st dns add "$DC1_IP" "$DNSDOMAIN" "${entry%%:*}" A "127.0.0.${entry#*:}" "${auth[@]}"
	done
	for entry in $DNS_ALIASES; do
		st dns add "$DC1_IP" "$DNSDOMAIN" "${entry%%:*}" CNAME "${entry#*:}.$DNSDOMAIN" "${auth[@]}"
	done
}
make_dns_reverse() {
	local auth=(-U "$ADMIN_USER%$ADMIN_PASSWORD") rev=0.0.127.in-addr.arpa entry
	st dns zonecreate "$DC1_IP" "$rev" "${auth[@]}"
	st dns add "$DC1_IP" "$rev" "${DC1_IP##*.}" PTR "$DC_HOST.$DNSDOMAIN" "${auth[@]}"
	for entry in $DNS_HOSTS; do
		st dns add "$DC1_IP" "$rev" "${entry#*:}" PTR "${entry%%:*}.$DNSDOMAIN" "${auth[@]}"
	done
	# forward and reverse disagree: sqlm's address maps back to a former name
	st dns add "$DC1_IP" "$rev" 19 PTR "oldname.$DNSDOMAIN" "${auth[@]}"
}

# Locked out, the honest way: a password settings object with a lockout threshold applies to
# sqlsvc_lock alone (the domain keeps threshold 0, so tests that try wrong passwords cannot
# lock out any other account), then the KDC sees that many wrong passwords. Lockout duration
# 0: locked until an administrator unlocks it. (A reset window of 0 would forget each bad
# password at once: badPwdCount never passes 1.)
make_lockout() {
	local i out
	st domain passwordsettings pso create lockout-sqlsvc_lock 1 \
		--account-lockout-threshold=$LOCK_THRESHOLD --account-lockout-duration=0 \
		--reset-account-lockout-after=30
	st domain passwordsettings pso apply lockout-sqlsvc_lock sqlsvc_lock
	for i in $(seq $LOCK_THRESHOLD); do
		out=$(echo "wrong-password-$i" | KRB5_CONFIG=$KRB5_CONF KRB5CCNAME=FILE:$DIR/tmp/ccache-lockout \
			kinit "sqlsvc_lock@$REALM" 2>&1) && die "kinit of sqlsvc_lock with a wrong password succeeded"
		echo "+ kinit sqlsvc_lock@$REALM with wrong password $i: ${out##*kinit: }" >>"$LOGS/$FIXLOG.log"
	done
	out=$(ldbsearch -H "$DC1/private/sam.ldb" '(sAMAccountName=sqlsvc_lock)' lockoutTime | sed -n 's/^lockoutTime: //p')
	[ -n "$out" ] && [ "$out" != 0 ] ||
		die "sqlsvc_lock is not locked out after $LOCK_THRESHOLD wrong passwords (lockoutTime '$out')"
}

# Keytabs: samba-tool domain exportkeytab writes every account's keys (AES256, AES128, RC4;
# principal sAMAccountName@CORP.TEST) into one file, which MIT ktutil splits into
# $KEYTABS/<sAMAccountName>.keytab (an export per account costs 0.7 s each). The SPNs share
# their account's keys: an acceptor picks the entry by enctype and kvno (gokrb5: set
# service.KeytabPrincipal to the sAMAccountName).
make_keytabs() {
	local all=$DIR/tmp/all.keytab sam kt
	rm -f "$all"
	run "${FIXLOG:-fixtures}" samba-tool domain exportkeytab "$all" -s "$CONF1"
	for sam in $KEYTAB_ACCOUNTS; do
		kt=$KEYTABS/$sam.keytab
		rm -f "$kt"
		{
			echo "rkt $all"
			# slots are numbered in file order; delete the others from the last one down
			klist -k "$all" | awk -v p="$sam@$REALM" 'NR > 3 { n++; if ($2 != p) print "delent " n }' | sort -k2,2nr
			echo "wkt $kt"
			echo quit
		} | ktutil >>"$LOGS/${FIXLOG:-fixtures}.log" 2>&1
		[ "$(klist -k "$kt" 2>/dev/null | awk 'NR > 3' | wc -l)" -ge 2 ] || die "keytab $kt has no keys of $sam"
		chmod 600 "$kt"
	done
	rm -f "$all" # it holds krbtgt's keys too
}

# Duplicate SPN: samldb refuses it through samba-tool, ldapmodify (even with the relax control)
# and ldbmodify on sam.ldb; only a write into the raw partition file, which bypasses every
# Samba module, makes it. Done LAST: afterwards SPN edits on either account fail (samldb
# search error 19).
make_duplicate_spn() {
	local spn=MSSQLSvc/sqldup.$DNSDOMAIN:1433 raw
	st spn add "$spn" sqldup1
	raw="tdb://$DC1/private/sam.ldb.d/$(echo "$BASEDN" | tr '[:lower:]' '[:upper:]').ldb"
	CURRENT_LOG=$LOGS/fixtures.log
	echo "+ ldbmodify -H $raw (duplicate SPN on sqldup2)" >>"$CURRENT_LOG"
	printf 'dn: CN=sqldup2,CN=Users,%s\nchangetype: modify\nadd: servicePrincipalName\nservicePrincipalName: %s\n' \
		"$BASEDN" "$spn" | ldbmodify -H "$raw" >>"$CURRENT_LOG" 2>&1 || die "raw write of the duplicate SPN failed"
}

# An account with an RC4 key only, as an account whose password was last set before the
# domain reached the 2008 functional level has: password_hash always derives AES keys (into
# supplementalCredentials), so, like the duplicate SPN, only a raw write into the partition
# file makes it: supplementalCredentials goes (the KDC then has only unicodePwd, the RC4 key)
# and pwdLastSet moves to 2005-01-01, before the Read-only Domain Controllers group existed.
make_rc4_only_keys() {
	local raw
	raw="tdb://$DC1/private/sam.ldb.d/$(echo "$BASEDN" | tr '[:lower:]' '[:upper:]').ldb"
	CURRENT_LOG=$LOGS/fixtures.log
	echo "+ ldbmodify -H $raw (sqlsvc_old: RC4 key only, pwdLastSet 2005-01-01)" >>"$CURRENT_LOG"
	printf 'dn: CN=sqlsvc_old,CN=Users,%s\nchangetype: modify\ndelete: supplementalCredentials\n-\nreplace: pwdLastSet\npwdLastSet: %s\n' \
		"$BASEDN" 127490112000000000 | ldbmodify -H "$raw" >>"$CURRENT_LOG" 2>&1 || die "raw write of sqlsvc_old's keys failed"
}

LANES=()
lane() { # lane NAME COMMAND...: run COMMAND in the background, logging to fixtures-NAME.log
	local name=$1
	shift
	(
		FIXLOG=fixtures-$name
		"$@"
	) &
	LANES+=("$!:$name")
}
lanes_wait() {
	local l failed=()
	for l in "${LANES[@]}"; do wait "${l%%:*}" || failed+=("${l#*:}"); done
	LANES=()
	[ ${#failed[@]} -eq 0 ] || die "fixture lane(s) failed: ${failed[*]}; see $LOGS/fixtures-<lane>.log"
}

fixtures_all() {
	lane dns-forward make_dns_forward
	lane dns-reverse make_dns_reverse
	FIXLOG=fixtures
	make_accounts
	timing accounts
	lane lockout make_lockout
	FIXLOG=fixtures
	make_keytabs
	timing keytabs
	lanes_wait
	timing dns+lockout
	make_duplicate_spn
	timing duplicate
	make_rc4_only_keys
	timing rc4-only-keys
}
