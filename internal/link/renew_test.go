package link_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"lobby/internal/linkproto"
	"lobby/internal/pki"
)

// A host whose certificate nears its end gets a new one over its link,
// links with it, and the old one is refused from then on.
func TestCertificateRenewal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := newNode(t, "hub1.test", false)
	var back atomic.Int64 // how far in the past the hub's clock is
	n.hub.Now = func() time.Time { return time.Now().Add(-time.Duration(back.Load())) }

	// Joined 300 days ago: 65 days left, less than the third of a year
	// after which an agent renews.
	back.Store(int64(300 * 24 * time.Hour))
	a := newAgent(t, "host-renew", memProvider(t), linkproto.HubSetting{URL: n.srv.URL})
	if err := a.Join(ctx, n.token(t, 1, time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	back.Store(0)
	idDir := filepath.Join(a.DataDir(), "identity")
	oldCert, err := tls.LoadX509KeyPair(filepath.Join(idDir, "host.crt"), filepath.Join(idDir, "host.key"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := n.st.GetHost(ctx, a.HostID())
	if err != nil {
		t.Fatal(err)
	}
	oldSerial := h.CertSerial

	run(t, a)
	eventually(t, "the renewed certificate is the host's", func() bool {
		h, err = n.st.GetHost(ctx, a.HostID())
		return err == nil && h.CertSerial != oldSerial && n.hub.Linked(a.HostID())
	})

	// The agent keeps the new pair, whole, and it is the one the store has.
	pemBytes, err := os.ReadFile(filepath.Join(idDir, "host.crt"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if got := pki.SerialHex(cert.SerialNumber); got != h.CertSerial {
		t.Errorf("the agent keeps certificate %s, the store says %s", got, h.CertSerial)
	}
	if left := time.Until(cert.NotAfter); left < pki.HostLifetime-time.Hour {
		t.Errorf("the renewed certificate has %s left, want a full lifetime", left)
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(idDir, "host.crt"), filepath.Join(idDir, "host.key")); err != nil {
		t.Errorf("the renewed key and certificate do not pair: %v", err)
	}
	for _, f := range []string{"host.crt.new", "host.key.new"} {
		if _, err := os.Stat(filepath.Join(idDir, f)); err == nil {
			t.Errorf("%s left behind", f)
		}
	}

	// The old certificate is refused.
	w := rawHello(t, n, &oldCert, linkproto.Hello{Proto: linkproto.Version, Kind: linkproto.KindLeaf, Name: "host-renew"})
	if w.Error == nil || w.Error.Code != linkproto.CodeRevoked || !strings.Contains(w.Error.Message, "renewed") {
		t.Errorf("the old certificate got %+v, want a refusal saying it was replaced", w.Error)
	}

	// Renewed once: the new certificate is far from its end.
	time.Sleep(time.Second)
	if h2, err := n.st.GetHost(ctx, a.HostID()); err != nil || h2.CertSerial != h.CertSerial {
		t.Errorf("the certificate changed again: %v %v", h2, err)
	}
}
