package agent

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"lobby/internal/datadir"
	"lobby/internal/pki"
)

// identity is the host's certificate, its key and the pinned cluster CA,
// kept in DataDir/identity.
type identity struct {
	cert   tls.Certificate
	ca     *x509.Certificate
	hostID string
	name   string
}

func identityDir(dataDir string) string { return filepath.Join(dataDir, "identity") }

// HasIdentity reports whether the agent with this data directory has
// joined a cluster.
func HasIdentity(dataDir string) bool {
	_, err := os.Stat(filepath.Join(identityDir(dataDir), "host.crt"))
	return err == nil
}

// loadIdentity reads the identity; (nil, nil) when the host has not
// joined yet.
func loadIdentity(dataDir string) (*identity, error) {
	dir := identityDir(dataDir)
	certFile, keyFile, caFile := filepath.Join(dir, "host.crt"), filepath.Join(dir, "host.key"), filepath.Join(dir, "ca.crt")
	if _, err := os.Stat(certFile); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err := finishRenewal(dir); err != nil {
		return nil, fmt.Errorf("finish the renewal of this host's certificate in %s: %w", dir, err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load this host's identity from %s: %w (remove the directory and join again)", dir, err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("load the pinned cluster CA: %w", err)
	}
	block, _ := pem.Decode(caPEM)
	if block == nil {
		return nil, fmt.Errorf("%s holds no certificate: remove %s and join again", caFile, dir)
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", caFile, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, err
	}
	cert.Leaf = leaf
	id, err := pki.IdentityOf(leaf)
	if err != nil || id.Kind != pki.KindHost {
		return nil, fmt.Errorf("%s is not a Lobby host certificate: remove %s and join again", certFile, dir)
	}
	return &identity{cert: cert, ca: ca, hostID: id.ID, name: id.Name}, nil
}

// saveIdentity writes a new identity, each file atomically, the key
// readable only by the agent's user.
func saveIdentity(dataDir string, key *ecdsa.PrivateKey, certDER []byte, ca *x509.Certificate) error {
	dir := identityDir(dataDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("make %s: %w", dir, err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	files := []struct {
		name string
		mode os.FileMode
		data []byte
	}{
		{"host.key", 0o600, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})},
		{"ca.crt", 0o644, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})},
		// The certificate last: its presence means the identity is whole.
		{"host.crt", 0o644, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})},
	}
	for _, f := range files {
		if err := datadir.WriteFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// saveRenewal replaces the host's key and certificate with renewed ones.
// They are written beside the old pair first (host.key.new, host.crt.new)
// and then moved over it, so that an agent stopped at any point finds a
// pair that matches (see finishRenewal).
func saveRenewal(dataDir string, key *ecdsa.PrivateKey, certDER []byte) error {
	dir := identityDir(dataDir)
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := datadir.WriteFile(filepath.Join(dir, "host.key.new"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	if err := datadir.WriteFile(filepath.Join(dir, "host.crt.new"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}), 0o644); err != nil {
		return err
	}
	return finishRenewal(dir)
}

// finishRenewal completes a renewal that saveRenewal began: once
// host.crt.new is whole, it and its key become the host's. A renewal
// stopped before that is dropped: the old pair still stands.
func finishRenewal(dir string) error {
	newCert, newKey, key := filepath.Join(dir, "host.crt.new"), filepath.Join(dir, "host.key.new"), filepath.Join(dir, "host.key")
	if _, err := os.Stat(newCert); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if _, err := tls.LoadX509KeyPair(newCert, newKey); err == nil {
		if err := os.Rename(newKey, key); err != nil {
			return err
		}
	}
	if _, err := tls.LoadX509KeyPair(newCert, key); err != nil {
		// Not a pair: a renewal interrupted while writing.
		return errors.Join(os.Remove(newCert), ignoreMissing(os.Remove(newKey)))
	}
	return os.Rename(newCert, filepath.Join(dir, "host.crt"))
}

func ignoreMissing(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
