package pki

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"

	"lobby/internal/store"
)

// LoadCA returns the cluster's CA from the store, never creating one (the
// health check reads it): store.ErrNotFound when no node has made it yet,
// ErrWrongKey when key is not the cluster's.
func LoadCA(ctx context.Context, st store.Store, key ClusterKey) (*CA, error) {
	return loadCA(ctx, st, key)
}

// ParseCertPEM reads one PEM certificate.
func ParseCertPEM(s string) (*x509.Certificate, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

// CertPEM writes a DER certificate as PEM.
func CertPEM(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
