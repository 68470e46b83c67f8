// Package pki is the cluster's own certificate authority. Every link
// between Lobby processes is mutual TLS with certificates it issued: hosts
// get theirs by redeeming a join token, nodes issue their own at start.
// The CA's private key lives in the store sealed with the cluster key, so
// any node that has the key can admit agents and none keeps it in the
// clear.
package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"time"
)

// Certificate kinds, carried as a URI SAN lobby://KIND/ID so that a
// certificate says what it identifies without trusting its common name.
const (
	KindHost = "host"
	KindNode = "node"
)

// Lifetimes.
const (
	caLifetime   = 20 * 365 * 24 * time.Hour
	HostLifetime = 365 * 24 * time.Hour
	NodeLifetime = 90 * 24 * time.Hour
	// backdate covers clocks a little behind the issuer's.
	backdate = time.Hour
)

// CA is the cluster's certificate authority.
type CA struct {
	Cert *x509.Certificate
	key  crypto.Signer
}

// NewCA makes a new authority (ECDSA P-256).
func NewCA(now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(),
		Subject:               pkix.Name{CommonName: "Lobby cluster CA", Organization: []string{"Lobby"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, key: key}, nil
}

// Fingerprint is the SHA-256 of the CA certificate, which join tokens
// carry so that an agent can pin the CA on its first connection.
func (ca *CA) Fingerprint() [32]byte { return sha256.Sum256(ca.Cert.Raw) }

// Identity is what a link certificate names.
type Identity struct {
	Kind string // KindHost or KindNode
	ID   string // host ID, or the node's site ID
	Name string // host or node name (common name; DNS name for nodes)
}

// Issue signs a certificate for pub naming id, valid for lifetime from
// now, and returns its DER and hex serial.
func (ca *CA) Issue(pub crypto.PublicKey, id Identity, now time.Time, lifetime time.Duration) (der []byte, serial string, err error) {
	if id.Kind != KindHost && id.Kind != KindNode {
		return nil, "", fmt.Errorf("certificate kind %q is not host or node", id.Kind)
	}
	sn := newSerial()
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: id.Name, Organization: []string{"Lobby"}},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(lifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		URIs:         []*url.URL{{Scheme: "lobby", Host: id.Kind, Path: "/" + id.ID}},
	}
	if id.Kind == KindNode {
		tmpl.DNSNames = []string{id.Name}
	}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.key)
	if err != nil {
		return nil, "", fmt.Errorf("issue certificate for %s %s: %w", id.Kind, id.Name, err)
	}
	return der, SerialHex(sn), nil
}

// IssueTLS makes a key and a certificate for id, ready for a TLS config
// (the chain includes the CA, so the peer can check it against a pin).
func (ca *CA) IssueTLS(id Identity, now time.Time, lifetime time.Duration) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	der, _, err := ca.Issue(&key.PublicKey, id, now, lifetime)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.Cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// SignCSR issues a certificate for the key in a DER certificate request,
// after checking the request's own signature. The request's subject is
// ignored: the CA decides the identity.
func (ca *CA) SignCSR(csrDER []byte, id Identity, now time.Time, lifetime time.Duration) (der []byte, serial string, err error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, "", fmt.Errorf("certificate request is malformed: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, "", fmt.Errorf("certificate request signature: %w", err)
	}
	return ca.Issue(csr.PublicKey, id, now, lifetime)
}

// Errors of Verify, each with its own message.
var (
	ErrUnknownCA   = errors.New("the certificate was not issued by this cluster's CA")
	ErrExpiredCert = errors.New("the certificate has expired or is not yet valid")
	ErrNoIdentity  = errors.New("the certificate names no Lobby host or node")
)

// Verify checks that chain[0] was issued by the CA, is valid at now, and
// returns the identity it names.
func Verify(caCert *x509.Certificate, chain []*x509.Certificate, now time.Time) (Identity, error) {
	if len(chain) == 0 {
		return Identity{}, errors.New("no certificate was presented")
	}
	leaf := chain[0]
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.Expired {
			return Identity{}, fmt.Errorf("%w (valid %s to %s)", ErrExpiredCert, leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		return Identity{}, fmt.Errorf("%w: %v", ErrUnknownCA, err)
	}
	return IdentityOf(leaf)
}

// IdentityOf reads the identity a certificate names.
func IdentityOf(c *x509.Certificate) (Identity, error) {
	for _, u := range c.URIs {
		if u.Scheme == "lobby" && (u.Host == KindHost || u.Host == KindNode) {
			id := strings.TrimPrefix(u.Path, "/")
			if id != "" {
				return Identity{Kind: u.Host, ID: id, Name: c.Subject.CommonName}, nil
			}
		}
	}
	return Identity{}, ErrNoIdentity
}

// NewKeyAndCSR makes a key for an agent and a request for its
// certificate; the key never leaves the agent.
func NewKeyAndCSR(name string) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}}, key)
	if err != nil {
		return nil, nil, err
	}
	return key, csr, nil
}

// SerialHex formats a serial number as the store keeps it.
func SerialHex(n *big.Int) string { return hex.EncodeToString(n.Bytes()) }

// FingerprintHex formats a SHA-256 as colon-separated upper-case hex, the
// way browsers and openssl show fingerprints.
func FingerprintHex(sum [32]byte) string {
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// MatchFingerprint reports whether cert's SHA-256 is sum.
func MatchFingerprint(cert *x509.Certificate, sum [32]byte) bool {
	got := sha256.Sum256(cert.Raw)
	return bytes.Equal(got[:], sum[:])
}

func newSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return n.Add(n, big.NewInt(1))
}
