package agent

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"lobby/internal/datadir"
	"lobby/internal/pki"
)

// A renewal stopped at any point leaves an identity that loads, with a
// key and a certificate that pair.
func TestInterruptedRenewal(t *testing.T) {
	t.Parallel()
	ca, err := pki.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	id := pki.Identity{Kind: pki.KindHost, ID: "hst_1", Name: "h1"}
	pair := func() (*ecdsa.PrivateKey, []byte) {
		key, csr, err := pki.NewKeyAndCSR("h1")
		if err != nil {
			t.Fatal(err)
		}
		der, _, err := ca.SignCSR(csr, id, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return key, der
	}
	file := func(dir, name string) []byte {
		b, _ := os.ReadFile(filepath.Join(identityDir(dir), name))
		return b
	}
	for _, tc := range []struct {
		name string
		// stop leaves the renewal's files as a crash at that point would;
		// it returns whether the new certificate should be the host's.
		stop func(dir string, key *ecdsa.PrivateKey, der []byte) bool
	}{
		{"after the new key", func(dir string, key *ecdsa.PrivateKey, der []byte) bool {
			writeNewKey(t, dir, key)
			return false
		}},
		{"halfway through the new certificate", func(dir string, key *ecdsa.PrivateKey, der []byte) bool {
			writeNewKey(t, dir, key)
			if err := os.WriteFile(filepath.Join(identityDir(dir), "host.crt.new"), []byte("-----BEGIN CERT"), 0o644); err != nil {
				t.Fatal(err)
			}
			return false
		}},
		{"before moving them", func(dir string, key *ecdsa.PrivateKey, der []byte) bool {
			writeNewKey(t, dir, key)
			writeNewCert(t, dir, der)
			return true
		}},
		{"between the two moves", func(dir string, key *ecdsa.PrivateKey, der []byte) bool {
			writeNewKey(t, dir, key)
			writeNewCert(t, dir, der)
			if err := os.Rename(filepath.Join(identityDir(dir), "host.key.new"), filepath.Join(identityDir(dir), "host.key")); err != nil {
				t.Fatal(err)
			}
			return true
		}},
		{"not stopped", func(dir string, key *ecdsa.PrivateKey, der []byte) bool {
			if err := saveRenewal(dir, key, der); err != nil {
				t.Fatal(err)
			}
			return true
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			oldKey, oldDER := pair()
			if err := saveIdentity(dir, oldKey, oldDER, ca.Cert); err != nil {
				t.Fatal(err)
			}
			oldCert := file(dir, "host.crt")
			newKey, newDER := pair()
			renewed := tc.stop(dir, newKey, newDER)
			got, err := loadIdentity(dir)
			if err != nil {
				t.Fatalf("the identity does not load: %v", err)
			}
			if isNew := !bytes.Equal(got.cert.Certificate[0], oldDER); isNew != renewed {
				t.Errorf("renewed certificate in use: %v, want %v", isNew, renewed)
			}
			if !renewed && !bytes.Equal(file(dir, "host.crt"), oldCert) {
				t.Error("the old certificate was changed")
			}
			for _, f := range []string{"host.crt.new"} {
				if _, err := os.Stat(filepath.Join(identityDir(dir), f)); err == nil {
					t.Errorf("%s left behind", f)
				}
			}
		})
	}
}

func writeNewKey(t *testing.T, dir string, key *ecdsa.PrivateKey) {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := datadir.WriteFile(filepath.Join(identityDir(dir), "host.key.new"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeNewCert(t *testing.T, dir string, der []byte) {
	t.Helper()
	if err := datadir.WriteFile(filepath.Join(identityDir(dir), "host.crt.new"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}
