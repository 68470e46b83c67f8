package pki

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// CASetting is the store setting that holds the cluster CA: its
// certificate and its key sealed with the cluster key.
const CASetting = caSetting

// StandaloneKeyFile is where a standalone node keeps its cluster key.
func StandaloneKeyFile(dataDir string) string { return filepath.Join(dataDir, "cluster.key") }

// ReadStandaloneKey reads dataDir/cluster.key without making one; the
// error wraps os.ErrNotExist when there is none.
func ReadStandaloneKey(dataDir string) (ClusterKey, error) {
	path := StandaloneKeyFile(dataDir)
	b, err := os.ReadFile(path)
	if err != nil {
		return ClusterKey{}, fmt.Errorf("read the cluster key %s: %w", path, err)
	}
	k, err := ParseClusterKey(string(b))
	if err != nil {
		return ClusterKey{}, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// Equal reports whether two keys are the same.
func (k ClusterKey) Equal(o ClusterKey) bool { return hmac.Equal(k.secret, o.secret) }

func parseStored(stored string) (storedCA, error) {
	var s storedCA
	if err := json.Unmarshal([]byte(stored), &s); err != nil {
		return s, fmt.Errorf("the cluster CA in the store is malformed: %w", err)
	}
	return s, nil
}

// SealedWith reports whether a stored CA (the value of CASetting) is
// sealed with k.
func SealedWith(stored string, k ClusterKey) (bool, error) {
	s, err := parseStored(stored)
	if err != nil {
		return false, err
	}
	return hmac.Equal([]byte(s.KeyCheck), []byte(k.check())), nil
}

// StoredFingerprint is the SHA-256 of a stored CA's certificate, the
// fingerprint join tokens carry: the same CA has the same one whatever
// key seals it.
func StoredFingerprint(stored string) ([32]byte, error) {
	s, err := parseStored(stored)
	if err != nil {
		return [32]byte{}, err
	}
	if len(s.Cert) == 0 {
		return [32]byte{}, errors.New("the cluster CA in the store has no certificate")
	}
	return sha256.Sum256(s.Cert), nil
}

// Reseal returns a stored CA sealed with to instead of from: the same
// authority, so the certificates it issued stay valid. It fails with
// ErrWrongKey when from is not the key it is sealed with.
func Reseal(stored string, from, to ClusterKey) (string, error) {
	s, err := parseStored(stored)
	if err != nil {
		return "", err
	}
	if !hmac.Equal([]byte(s.KeyCheck), []byte(from.check())) {
		return "", ErrWrongKey
	}
	plain, err := from.open(s.SealedKey)
	if err != nil {
		return "", fmt.Errorf("unseal the cluster CA's key: %w", err)
	}
	if s.SealedKey, err = to.seal(plain); err != nil {
		return "", err
	}
	s.KeyCheck = to.check()
	b, err := json.Marshal(s)
	return string(b), err
}
