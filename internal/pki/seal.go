package pki

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"lobby/internal/store"
)

// ClusterKey is the secret every node of a cluster is configured with. It
// seals the CA's key in the store; it is never stored itself.
type ClusterKey struct{ secret []byte }

// MinKeyLength is the shortest cluster key accepted, in characters.
const MinKeyLength = 32

// ParseClusterKey checks a configured key.
func ParseClusterKey(s string) (ClusterKey, error) {
	s = strings.TrimSpace(s)
	if len(s) < MinKeyLength {
		return ClusterKey{}, fmt.Errorf("the cluster key is %d characters long; it needs at least %d: make one with `lobby admin cluster-key`", len(s), MinKeyLength)
	}
	return ClusterKey{secret: []byte(s)}, nil
}

// NewClusterKeyString makes a random cluster key (256 bits, base64url).
func NewClusterKeyString() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// StandaloneKey returns the key kept in dataDir/cluster.key, making it
// on first use: a standalone node has no one to share it with.
func StandaloneKey(dataDir string) (ClusterKey, error) {
	path := filepath.Join(dataDir, "cluster.key")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		s := NewClusterKeyString()
		if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
			return ClusterKey{}, fmt.Errorf("write the cluster key %s: %w", path, err)
		}
		return ParseClusterKey(s)
	}
	if err != nil {
		return ClusterKey{}, fmt.Errorf("read the cluster key %s: %w", path, err)
	}
	k, err := ParseClusterKey(string(b))
	if err != nil {
		return ClusterKey{}, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func (k ClusterKey) derive(purpose string) []byte {
	b, err := hkdf.Key(sha256.New, k.secret, []byte("lobby cluster key"), purpose, 32)
	if err != nil {
		panic(err) // only for lengths hkdf cannot produce
	}
	return b
}

// check is a MAC of a constant, stored beside the sealed key so that a
// node with the wrong key is told so instead of failing to decrypt.
func (k ClusterKey) check() string {
	m := hmac.New(sha256.New, k.derive("check"))
	m.Write([]byte("lobby cluster key check"))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func (k ClusterKey) seal(plain []byte) ([]byte, error) {
	gcm, err := k.aead()
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return gcm.Seal(nonce, nonce, plain, []byte("lobby ca key")), nil
}

func (k ClusterKey) open(sealed []byte) ([]byte, error) {
	gcm, err := k.aead()
	if err != nil {
		return nil, err
	}
	if len(sealed) < gcm.NonceSize() {
		return nil, errors.New("sealed key is truncated")
	}
	return gcm.Open(nil, sealed[:gcm.NonceSize()], sealed[gcm.NonceSize():], []byte("lobby ca key"))
}

func (k ClusterKey) aead() (cipher.AEAD, error) {
	block, err := aes.NewCipher(k.derive("ca key"))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// caSetting is the store setting holding the CA.
const caSetting = "cluster.ca"

type storedCA struct {
	Cert      []byte `json:"cert"`       // DER
	SealedKey []byte `json:"sealed_key"` // PKCS#8, AES-256-GCM under the cluster key
	KeyCheck  string `json:"key_check"`
}

// ErrWrongKey means the configured cluster key is not the one the
// cluster's CA was sealed with.
var ErrWrongKey = errors.New("the cluster key does not match the one this cluster was created with: give every node the same LOBBY_CLUSTER_KEY")

// LoadOrCreateCA returns the cluster's CA from the store, creating it on
// the first node's first start.
func LoadOrCreateCA(ctx context.Context, st store.Store, key ClusterKey, now time.Time) (*CA, error) {
	ca, err := loadCA(ctx, st, key)
	if !errors.Is(err, store.ErrNotFound) {
		return ca, err
	}
	ca, err = NewCA(now)
	if err != nil {
		return nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return nil, err
	}
	sealed, err := key.seal(pkcs8)
	if err != nil {
		return nil, err
	}
	v, err := json.Marshal(storedCA{Cert: ca.Cert.Raw, SealedKey: sealed, KeyCheck: key.check()})
	if err != nil {
		return nil, err
	}
	err = st.InTx(ctx, func(q store.Queries) error {
		if _, err := q.GetSetting(ctx, caSetting); err == nil {
			return nil // another node made it first: use theirs
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return q.SetSetting(ctx, caSetting, string(v))
	})
	if err != nil {
		return nil, fmt.Errorf("store the cluster CA: %w", err)
	}
	return loadCA(ctx, st, key)
}

func loadCA(ctx context.Context, st store.Store, key ClusterKey) (*CA, error) {
	v, err := st.GetSetting(ctx, caSetting)
	if err != nil {
		return nil, err
	}
	var s storedCA
	if err := json.Unmarshal([]byte(v), &s); err != nil {
		return nil, fmt.Errorf("the cluster CA in the store is malformed: %w", err)
	}
	if !hmac.Equal([]byte(s.KeyCheck), []byte(key.check())) {
		return nil, ErrWrongKey
	}
	pkcs8, err := key.open(s.SealedKey)
	if err != nil {
		return nil, fmt.Errorf("unseal the cluster CA's key: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(pkcs8)
	if err != nil {
		return nil, fmt.Errorf("the cluster CA's key is malformed: %w", err)
	}
	signer, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("the cluster CA's key is a %T, not ECDSA", k)
	}
	cert, err := x509.ParseCertificate(s.Cert)
	if err != nil {
		return nil, fmt.Errorf("the cluster CA's certificate is malformed: %w", err)
	}
	return &CA{Cert: cert, key: signer}, nil
}
