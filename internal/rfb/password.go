package rfb

import (
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"errors"
	"math/bits"
	"strings"
)

// obfuscationKey is the fixed key VNC uses to obfuscate stored passwords
// (vncAuthObfuscatePasswd in TigerVNC's rfb/obfuscate.cxx), as given to
// d3des's deskey.
var obfuscationKey = [8]byte{23, 82, 107, 6, 35, 78, 88, 7}

// vncCipher returns the DES cipher VNC derives from an 8-byte key. VNC's
// d3des takes key bits least significant first, so standard DES needs each
// byte's bits reversed.
func vncCipher(key [8]byte) cipher.Block {
	var k [8]byte
	for i, b := range key {
		k[i] = bits.Reverse8(b)
	}
	c, err := des.NewCipher(k[:])
	if err != nil {
		panic(err) // only fails for a key that is not 8 bytes
	}
	return c
}

// passwordKey is the password truncated or zero-padded to 8 bytes, as VNC
// uses it.
func passwordKey(password string) [8]byte {
	var k [8]byte
	copy(k[:], password)
	return k
}

// vncAuthResponse encrypts a 16-byte VncAuth challenge with the password:
// two DES-ECB blocks.
func vncAuthResponse(challenge [16]byte, password string) []byte {
	c := vncCipher(passwordKey(password))
	out := make([]byte, 16)
	c.Encrypt(out[:8], challenge[:8])
	c.Encrypt(out[8:], challenge[8:])
	return out
}

// EncryptPassword returns the 8-byte obfuscated form of password that a
// TigerVNC -PasswordFile holds (what `vncpasswd -f` writes): the password,
// truncated or zero-padded to 8 bytes, DES-encrypted with VNC's fixed key.
// Only the first 8 bytes of a password count in VNC authentication.
func EncryptPassword(password string) []byte {
	k := passwordKey(password)
	out := make([]byte, 8)
	vncCipher(obfuscationKey).Encrypt(out, k[:])
	return out
}

// DecryptPassword reverses EncryptPassword: it reads the first 8 bytes of a
// password file and returns the password without its zero padding.
func DecryptPassword(file []byte) (string, error) {
	if len(file) < 8 {
		return "", errors.New("rfb: password file is shorter than 8 bytes")
	}
	out := make([]byte, 8)
	vncCipher(obfuscationKey).Decrypt(out, file[:8])
	return strings.TrimRight(string(out), "\x00"), nil
}

// passwordAlphabet has 64 characters so each random byte maps to one
// uniformly by its low 6 bits.
const passwordAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// RandomPassword returns 8 random printable characters (48 bits from
// crypto/rand): the most a VNC password can hold.
func RandomPassword() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails on Linux; panics otherwise
	for i := range b {
		b[i] = passwordAlphabet[b[i]&63]
	}
	return string(b[:])
}
