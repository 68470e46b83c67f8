package client

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// Fingerprint returns the SHA-256 fingerprint of a DER certificate in the
// form Lobby prints it: upper-case hex pairs joined by colons.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return formatFingerprint(sum[:])
}

func formatFingerprint(sum []byte) string {
	h := strings.ToUpper(hex.EncodeToString(sum))
	parts := make([]string, 0, len(sum))
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// ParseFingerprint reads a SHA-256 fingerprint written as 64 hex digits
// (colons, spaces and case do not matter) or as base64, with or without a
// "sha256:" prefix.
func ParseFingerprint(s string) ([]byte, error) {
	t := strings.TrimSpace(s)
	if len(t) > 7 && strings.EqualFold(t[:7], "sha256:") {
		t = t[7:]
	}
	if h := strings.NewReplacer(":", "", " ", "", "-", "").Replace(t); len(h) == 64 {
		if b, err := hex.DecodeString(h); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(t); err == nil && len(b) == sha256.Size {
			return b, nil
		}
	}
	return nil, fmt.Errorf("fingerprint %q is not a SHA-256 fingerprint: give the 64 hex digits `lobby server` printed (colons allowed)", s)
}

// FingerprintError reports that the server's certificate is not the pinned
// one.
type FingerprintError struct {
	Want string // the pinned fingerprint
	Got  string // the server's
}

func (e *FingerprintError) Error() string {
	return fmt.Sprintf("the server's certificate fingerprint is %s, not the pinned %s: this is not the server you pinned, or its certificate changed; compare with the fingerprint `lobby server` printed and log in again with --fingerprint", e.Got, e.Want)
}

// UntrustedError reports a server certificate that does not verify against
// the trusted roots. Fingerprint is the leaf's, to compare with the one the
// server printed.
type UntrustedError struct {
	URL         string
	Fingerprint string
	Err         error
}

func (e *UntrustedError) Error() string {
	return fmt.Sprintf("the certificate of %s is not trusted (%v); its SHA-256 fingerprint is %s: if that is the fingerprint `lobby server` printed, pin it with `lobby login --fingerprint`, or give its CA certificate with --ca FILE", e.URL, e.Err, e.Fingerprint)
}

func (e *UntrustedError) Unwrap() error { return e.Err }

// httpClient builds the HTTP client the options ask for.
func httpClient(o *options) (*http.Client, error) {
	if o.caFile == "" && o.fingerprint == "" {
		if o.hc != nil {
			return o.hc, nil
		}
		return &http.Client{}, nil
	}
	hc := &http.Client{}
	if o.hc != nil {
		c := *o.hc
		hc = &c
	}
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	t, ok := rt.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("a CA file or fingerprint needs an *http.Transport, not %T", rt)
	}
	t = t.Clone()
	conf, err := tlsConfig(t.TLSClientConfig, o)
	if err != nil {
		return nil, err
	}
	t.TLSClientConfig = conf
	hc.Transport = t
	return hc, nil
}

// tlsConfig derives a TLS configuration from base (may be nil) that trusts
// the CA file or pins the fingerprint.
func tlsConfig(base *tls.Config, o *options) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if base != nil {
		conf = base.Clone()
	}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, fmt.Errorf("read CA certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", o.caFile)
		}
		conf.RootCAs = pool
	}
	if o.fingerprint != "" {
		want, err := ParseFingerprint(o.fingerprint)
		if err != nil {
			return nil, err
		}
		// The pin replaces chain verification; VerifyConnection also runs
		// on resumed sessions, unlike VerifyPeerCertificate.
		conf.InsecureSkipVerify = true
		conf.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the server sent no certificate")
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(got[:], want) != 1 {
				return &FingerprintError{Want: formatFingerprint(want), Got: formatFingerprint(got[:])}
			}
			return nil
		}
	}
	return conf, nil
}
