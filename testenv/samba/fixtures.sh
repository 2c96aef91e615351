# fixtures.sh - the accounts, SPNs, delegation settings and DNS records of the AD world.
# Sourced by world.sh (which defines st, run, say, timing, die and the variables used here)
# while DC1 is running on $DC1_IP. Each fixture stands for one failure mode (or the correct
# setup) of the field's Kerberos-for-SQL-Server checklist; testenv/README.md has the table.
#
# Everything goes through Samba's own tools: samba-tool against the local database (as system),
# ldbmodify on sam.ldb (through all of Samba's modules and checks) to batch plain attribute
# writes, samba-tool dns against the running DC, kinit against its KDC, samba-tool
# domain exportkeytab for the keys. One thing cannot be made so: a duplicate SPN, which samldb
# refuses on every path; it is written into the raw partition file, last.
#
# Independent steps run in parallel "lanes" (samba-tool costs ~0.4 s of Python start-up per
# call); each lane logs to $LOGS/fixtures-<lane>.log.

ACCOUNTS="krbmon sqlsvc_a sqlsvc_b sqlsvc_c sqlsvc_d wrongacct sqldup1 sqldup2 sqlsvc_u sqlsvc_pt
sqlsvc_r sqlsvc_rc4 sqlsvc_dis sqlsvc_lock crmweb alice bob carol"
# accounts whose keys are exported to $KEYTABS/<sAMAccountName>.keytab
KEYTAB_ACCOUNTS="$ACCOUNTS SQLE\$"
LOCK_THRESHOLD=3

# the four SPN forms SQL Server registers for a default instance on TCP 1433
sql_spns() { # sql_spns HOST
	echo "MSSQLSvc/$1.$DNSDOMAIN:1433 MSSQLSvc/$1.$DNSDOMAIN MSSQLSvc/$1:1433 MSSQLSvc/$1"
}

# ldif_add USER ATTRIBUTE VALUE...: an LDIF modify record adding values to a user in CN=Users
ldif_add() {
	local user=$1 attr=$2 v
	shift 2
	printf 'dn: CN=%s,CN=Users,%s\nchangetype: modify\nadd: %s\n' "$user" "$BASEDN" "$attr"
	for v in "$@"; do printf '%s: %s\n' "$attr" "$v"; done
	printf '\n'
}

# ldbmodify on DC1's sam.ldb, through all of Samba's modules: schema, samldb (SPN uniqueness
# included) and the rest, as system. LDIF on stdin.
ldb_modify() {
	local ldif log=$LOGS/${FIXLOG:-fixtures}.log
	ldif=$(cat)
	CURRENT_LOG=$log
	printf '+ ldbmodify -H %s\n%s\n' "$DC1/private/sam.ldb" "$ldif" >>"$log"
	printf '%s\n' "$ldif" | ldbmodify -H "$DC1/private/sam.ldb" >>"$log" 2>&1 ||
		die "ldbmodify on $DC1/private/sam.ldb failed"
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

add_users() { # every account starts as an ordinary, enabled user (userAccountControl 0x200)
	local u pw
	for u in "$@"; do
		pw=$SVC_PASSWORD
		# wrongacct gets a password of its own: RC4 keys are unsalted (MD4 of the password), so
		# with sqlsvc_d's password sqld's RC4 tickets would decrypt with sqlsvc_d's keys
		[ "$u" = wrongacct ] && pw=$WRONGACCT_PASSWORD
		st user add "$u" "$pw"
	done
}

# SQL E runs as a gMSA/virtual account: a computer account stands in for it, with a gMSA's
# dNSHostName and encryption types (RC4+AES, 28). Computer accounts
# are created disabled (0x1002) and without keys (kvno: "KDC has no support for encryption
# type"): give it a password (AES keys) and enable it.
make_sqle() {
	st computer create SQLE "--service-principal-name=MSSQLSvc/sqle.$DNSDOMAIN:1433"
	ldb_modify <<EOF
dn: CN=SQLE,CN=Computers,$BASEDN
changetype: modify
replace: dNSHostName
dNSHostName: sqle.$DNSDOMAIN
-
replace: msDS-SupportedEncryptionTypes
msDS-SupportedEncryptionTypes: 28
EOF
	st user setpassword 'SQLE$' "--newpassword=$SVC_PASSWORD"
	st user enable 'SQLE$'
}

# DNS records in Samba's internal DNS, through the running DC's RPC interface.
make_dns() {
	local auth=(-U "$ADMIN_USER%$ADMIN_PASSWORD") rev=0.0.127.in-addr.arpa entry name ip
	st dns zonecreate "$DC1_IP" "$rev" "${auth[@]}"
	for entry in sqla:11 sqlb:12 sqlc:13 sqld:14 sqle:15 crm:20; do
		name=${entry%%:*}
		ip=127.0.0.${entry#*:}
		st dns add "$DC1_IP" "$DNSDOMAIN" "$name" A "$ip" "${auth[@]}"
		st dns add "$DC1_IP" "$rev" "${ip##*.}" PTR "$name.$DNSDOMAIN" "${auth[@]}"
	done
	# the DC itself: provision never registers 127.0.0.1 (it drops that address on purpose)
	st dns add "$DC1_IP" "$DNSDOMAIN" "$DC_HOST" A "$DC1_IP" "${auth[@]}"
	st dns add "$DC1_IP" "$DNSDOMAIN" @ A "$DC1_IP" "${auth[@]}"
	st dns add "$DC1_IP" "$rev" "${DC1_IP##*.}" PTR "$DC_HOST.$DNSDOMAIN" "${auth[@]}"
	# forward and reverse disagree: sqlm's address maps back to a former name
	st dns add "$DC1_IP" "$DNSDOMAIN" sqlm A 127.0.0.19 "${auth[@]}"
	st dns add "$DC1_IP" "$rev" 19 PTR "oldname.$DNSDOMAIN" "${auth[@]}"
}

# SPNs, constrained delegation targets and the RC4-only encryption type, in one batch.
make_spns() {
	{
		# SQL A, the correct setup: four SPN forms; constrained delegation, Kerberos only (no
		# protocol transition), to SQL B (the linked server's second hop)
		ldif_add sqlsvc_a servicePrincipalName $(sql_spns sqla)
		ldif_add sqlsvc_a msDS-AllowedToDelegateTo "MSSQLSvc/sqlb.$DNSDOMAIN:1433" "MSSQLSvc/sqlb.$DNSDOMAIN"
		# AES128+AES256 ("This account supports Kerberos AES 128/256 bit encryption"): AES
		# tickets. Accounts without the attribute get RC4 tickets with AES session keys.
		ldif_add sqlsvc_a msDS-SupportedEncryptionTypes 24
		# SQL B, the linked server
		ldif_add sqlsvc_b servicePrincipalName $(sql_spns sqlb)
		ldif_add sqlsvc_b msDS-SupportedEncryptionTypes 24
		# SQL C: sqlsvc_c has no SPN at all (clients fall back to NTLM)
		# SQL D: sqlsvc_d's SPN is registered on another account
		ldif_add wrongacct servicePrincipalName "MSSQLSvc/sqld.$DNSDOMAIN:1433"
		ldif_add sqlsvc_u servicePrincipalName "MSSQLSvc/sqlu.$DNSDOMAIN:1433"
		ldif_add sqlsvc_pt servicePrincipalName "MSSQLSvc/sqlpt.$DNSDOMAIN:1433"
		ldif_add sqlsvc_pt msDS-AllowedToDelegateTo "MSSQLSvc/sqlb.$DNSDOMAIN:1433"
		ldif_add sqlsvc_r servicePrincipalName "MSSQLSvc/sqlr.$DNSDOMAIN:1433"
		ldif_add sqlsvc_rc4 servicePrincipalName "MSSQLSvc/sqlrc4.$DNSDOMAIN:1433"
		ldif_add sqlsvc_rc4 msDS-SupportedEncryptionTypes 4 # RC4-HMAC only
		ldif_add sqlsvc_dis servicePrincipalName "MSSQLSvc/sqldis.$DNSDOMAIN:1433"
		ldif_add sqlsvc_lock servicePrincipalName "MSSQLSvc/sqllock.$DNSDOMAIN:1433"
		# web front end behind a load balancer: HTTP SPNs of the balanced name
		ldif_add crmweb servicePrincipalName "HTTP/crm.$DNSDOMAIN" HTTP/crm
	} | ldb_modify
}

make_flags() { # userAccountControl flags, through samba-tool's own commands
	st delegation for-any-service sqlsvc_u on    # TRUSTED_FOR_DELEGATION 0x80000 (unconstrained)
	st delegation for-any-protocol sqlsvc_pt on  # TRUSTED_TO_AUTH_FOR_DELEGATION 0x1000000
	st user disable sqlsvc_dis                   # ACCOUNTDISABLE 0x2
	st user sensitive alice on                   # NOT_DELEGATED 0x100000
}

make_groups_and_rbcd() {
	st group addmembers "Protected Users" bob
	# RBCD: SQLE$'s msDS-AllowedToActOnBehalfOfOtherIdentity allows sqlsvc_r. Samba 4.17 lets
	# only system write it (local samba-tool; over LDAP: "can only be modified as system").
	st delegation add-principal 'SQLE$' sqlsvc_r
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
# $KEYTABS/<sAMAccountName>.keytab (one export per account costs 0.7 s each). The SPNs share
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
	ldif_add sqldup2 servicePrincipalName "$spn" | ldbmodify -H "$raw" >>"$CURRENT_LOG" 2>&1 ||
		die "raw write of the duplicate SPN failed"
}

fixtures_all() {
	local a=($ACCOUNTS)
	lane users1 add_users "${a[@]:0:6}"
	lane users2 add_users "${a[@]:6:6}"
	lane users3 add_users "${a[@]:12}"
	lane sqle make_sqle
	lane dns make_dns
	lanes_wait
	timing accounts+dns
	lane spns make_spns
	lane flags make_flags
	lane rbcd make_groups_and_rbcd
	lane lockout make_lockout
	lanes_wait
	timing delegation
	FIXLOG=fixtures
	make_keytabs
	timing keytabs
	make_duplicate_spn
	timing duplicate
}
