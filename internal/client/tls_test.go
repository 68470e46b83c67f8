package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lobby/internal/lobby"
)

func TestParseFingerprint(t *testing.T) {
	t.Parallel()
	sum := sha256.Sum256([]byte("cert"))
	h := hex.EncodeToString(sum[:])
	for _, s := range []string{
		h,
		strings.ToUpper(h),
		Fingerprint([]byte("cert")),
		"SHA256:" + Fingerprint([]byte("cert")),
		"sha256:" + base64.RawStdEncoding.EncodeToString(sum[:]),
		base64.StdEncoding.EncodeToString(sum[:]),
	} {
		b, err := ParseFingerprint(s)
		if err != nil || string(b) != string(sum[:]) {
			t.Errorf("ParseFingerprint(%q) = %x, %v", s, b, err)
		}
	}
	for _, s := range []string{"", "abc", h[:62], strings.Repeat("zz", 32)} {
		if _, err := ParseFingerprint(s); err == nil {
			t.Errorf("ParseFingerprint(%q) succeeded", s)
		}
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, lobby.User{ID: "u1", Username: "alice"})
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are the point here
	srv.StartTLS()
	t.Cleanup(srv.Close)
	leaf := srv.Certificate()
	good := Fingerprint(leaf.Raw)
	bad := Fingerprint([]byte("another certificate"))
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	wrongCA := filepath.Join(t.TempDir(), "wrong.pem")
	if err := os.WriteFile(wrongCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: selfSigned(t)}), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		opts  []Option
		check func(t *testing.T, err error)
	}{
		{"pinned", []Option{WithFingerprint(good)}, func(t *testing.T, err error) {
			if err != nil {
				t.Fatal(err)
			}
		}},
		{"pinned lower-case bare hex", []Option{WithFingerprint(strings.ToLower(strings.ReplaceAll(good, ":", "")))}, func(t *testing.T, err error) {
			if err != nil {
				t.Fatal(err)
			}
		}},
		{"pin beats a wrong CA", []Option{WithCAFile(wrongCA), WithFingerprint(good)}, func(t *testing.T, err error) {
			if err != nil {
				t.Fatal(err)
			}
		}},
		{"pin mismatch", []Option{WithFingerprint(bad)}, func(t *testing.T, err error) {
			var fe *FingerprintError
			if !errors.As(err, &fe) || fe.Got != good || fe.Want != bad {
				t.Fatalf("err = %v, want *FingerprintError", err)
			}
		}},
		{"CA file", []Option{WithCAFile(caFile)}, func(t *testing.T, err error) {
			if err != nil {
				t.Fatal(err)
			}
		}},
		{"untrusted", nil, func(t *testing.T, err error) {
			var ue *UntrustedError
			if !errors.As(err, &ue) || ue.Fingerprint != good {
				t.Fatalf("err = %v, want *UntrustedError with %s", err, good)
			}
			if !strings.Contains(err.Error(), good) {
				t.Errorf("message %q lacks the fingerprint", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(srv.URL, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Me(context.Background())
			tt.check(t, err)
		})
	}

	t.Run("http against https", func(t *testing.T) {
		t.Parallel()
		c, _ := New(strings.Replace(srv.URL, "https://", "http://", 1))
		_, err := c.Me(context.Background())
		if !errors.Is(err, ErrNotLobby) || !strings.Contains(err.Error(), "use https://") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("https against http", func(t *testing.T) {
		t.Parallel()
		plain := httptest.NewServer(http.NotFoundHandler())
		t.Cleanup(plain.Close)
		c, _ := New(strings.Replace(plain.URL, "http://", "https://", 1), WithFingerprint(good))
		_, err := c.Me(context.Background())
		if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "use http://") {
			t.Fatalf("err = %v", err)
		}
	})
}

// selfSigned returns a fresh self-signed certificate (DER), unrelated to
// httptest's.
func selfSigned(t testing.TB) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "other"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
