package kdc

import (
	"fmt"
	"strings"

	"github.com/kerberos-exporter/kerberos_exporter/config"
)

// Encryption type numbers (RFC 3961, RFC 4757, RFC 8009).
const (
	ETypeDESCBCCRC  int32 = 1
	ETypeDESCBCMD5  int32 = 3
	ETypeAES128SHA1 int32 = 17
	ETypeAES256SHA1 int32 = 18
	ETypeAES128SHA2 int32 = 19
	ETypeAES256SHA2 int32 = 20
	ETypeRC4HMAC    int32 = 23
	ETypeRC4HMACExp int32 = 24
)

// etypeNames are the names MIT Kerberos and klist print, which Kerberos
// engineers recognise; the metric label uses them.
var etypeNames = map[int32]string{
	ETypeDESCBCCRC:  "des-cbc-crc",
	ETypeDESCBCMD5:  "des-cbc-md5",
	ETypeAES128SHA1: "aes128-cts-hmac-sha1-96",
	ETypeAES256SHA1: "aes256-cts-hmac-sha1-96",
	ETypeAES128SHA2: "aes128-cts-hmac-sha256-128",
	ETypeAES256SHA2: "aes256-cts-hmac-sha384-192",
	ETypeRC4HMAC:    "rc4-hmac",
	ETypeRC4HMACExp: "rc4-hmac-exp",
}

// ETypeName is the name of an encryption type number, "etype-N" for one
// without a name here (so that the label stays bounded and honest).
func ETypeName(id int32) string {
	if n, ok := etypeNames[id]; ok {
		return n
	}
	return fmt.Sprintf("etype-%d", id)
}

// ETypeIDs maps names to numbers; empty names mean the Windows default.
func ETypeIDs(names []string) ([]int32, error) {
	if len(names) == 0 {
		names = config.DefaultOfferedETypes
	}
	ids := make([]int32, 0, len(names))
	for _, n := range names {
		id, ok := int32(0), false
		for num, name := range etypeNames {
			if strings.EqualFold(name, n) {
				id, ok = num, true
			}
		}
		if !ok || !config.Offerable(n) {
			return nil, fmt.Errorf("kerberos: encryption type %q cannot be offered (use %s)", n, strings.Join(config.OfferableETypes, ", "))
		}
		ids = append(ids, id)
	}
	return ids, nil
}
