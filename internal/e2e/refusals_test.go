package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lobby/internal/link"
	"lobby/internal/linkproto"
	"lobby/internal/pki"
)

// TestAgentRefusals checks that each thing that keeps an agent out is
// refused with its own message: join tokens used up, mistyped, malformed
// or expired; a hub outside the link's name mask; a hub of another
// cluster; a host certificate of another cluster.
func TestAgentRefusals(t *testing.T) {
	t.Parallel()
	requireDesktops(t)
	n := startNode(t, "hub1.test")
	// Made first, tried last: the shortest life a token may have is a
	// minute, so it expires while the other cases run.
	expiring := n.token(t, 1, "1m")

	t.Log("case: a used-up token, and a hub outside the name mask")
	usedTokenAndMask(t, n)
	t.Log("case: mistyped and malformed tokens, and a join through a hub outside the mask")
	spare := n.token(t, 1, "1h")
	parsed, err := linkproto.ParseJoinToken(spare.Token)
	if err != nil {
		t.Fatal(err)
	}
	mistyped := linkproto.JoinToken{ID: parsed.ID, Secret: "guessed", CAFingerprint: parsed.CAFingerprint}.String()
	refusedJoin(t, n.url, "host-r3", mistyped, "join token refused", "not valid here")
	refusedJoin(t, n.url, "host-r4", "LJ1.not-a-token", "join token", "malformed")
	refusedJoin(t, n.url+",mask=hub2.*", "host-r5", spare.Token, "name mask", `"hub2.*"`)

	t.Log("case: a certificate of another CA, presented by hand")
	hubCA := forgedCertificate(t, n, parsed.CAFingerprint)
	t.Log("case: an agent of another cluster")
	otherCluster(t, n, hubCA)

	t.Log("case: an expired token")
	time.Sleep(time.Until(expiring.Expires.Add(time.Second)))
	refusedJoin(t, n.url, "host-r6", expiring.Token, "join token refused", "expired")

	// No refusal made a host or used a token.
	if hs := n.hosts(t); len(hs) != 1 || hs["host-r1"].ID == "" {
		t.Errorf("hosts after the refusals = %+v, want only host-r1", hs)
	}
	// And an agent that never joined is told to.
	refusedJoin(t, n.url, "host-r7", "", "has not joined", "--join TOKEN")
}

// usedTokenAndMask joins host-r1 with a one-use token, refuses a second
// agent the same token, then restarts host-r1 with a name mask its hub
// does not match: it keeps running and trying, never links, and logs why.
func usedTokenAndMask(t *testing.T, n *node) {
	once := n.token(t, 1, "1h")
	dir := agentDir(t)
	a := startAgent(t, "host-r1", dir, once.Token, n.url)
	eventually(t, "host-r1 is linked", func() bool { _, up := n.linkUp(t, "host-r1"); return up })
	if code := a.terminate(t); code != 0 {
		t.Errorf("host-r1 exited with %d on SIGTERM, want 0", code)
	}
	refusedJoin(t, n.url, "host-r2", once.Token, "join token refused", "already used")
	eventually(t, "the node sees host-r1 down", func() bool {
		_, up := n.linkUp(t, "host-r1")
		return !up && n.hosts(t)["host-r1"].State == "down"
	})

	a = startAgent(t, "host-r1", dir, "", n.url+",mask=hub2.*")
	for _, want := range []string{"the hub's name does not match the link's name mask", `which does not match \"hub2.*\"`} {
		a.waitStderr(t, want)
	}
	t.Logf("host-r1 with mask=hub2.*: %s", lineWith(a.stderr.String(), "name mask"))
	if a.exited() {
		t.Errorf("an agent whose only hub is outside its mask exited: %v; want it to keep trying", a.err)
	}
	if _, up := n.linkUp(t, "host-r1"); up {
		t.Error("host-r1 linked to a hub outside its name mask")
	}
	if code := a.terminate(t); code != 0 {
		t.Errorf("host-r1 exited with %d on SIGTERM, want 0", code)
	}
}

// refusedJoin starts an agent that must exit non-zero at once, its last
// words containing each of want.
func refusedJoin(t *testing.T, hub, name, token string, want ...string) {
	t.Helper()
	a := startAgent(t, name, agentDir(t), token, hub)
	code := a.wait(t)
	last := lastLine(a.stderr.String())
	t.Logf("agent %s exited with %d: %s", name, code, last)
	if code == 0 {
		t.Errorf("agent %s with token %q exited 0, want a refusal", name, token)
	}
	for _, w := range want {
		if !strings.Contains(last, w) {
			t.Errorf("agent %s exited with %d saying %q; want it to say %q", name, code, last, w)
		}
	}
}

// forgedCertificate speaks the link protocol by hand with a host
// certificate of a stranger's CA (a real agent cannot be made to): the
// node refuses it and lists the refusal. It returns the node's CA, as the
// TLS handshake showed it.
func forgedCertificate(t *testing.T, n *node, caFingerprint [32]byte) *x509.Certificate {
	stranger, err := pki.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := stranger.IssueTLS(pki.Identity{Kind: pki.KindHost, ID: "hst_forged", Name: "forged"}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	raw, err := link.Dial(ctx, n.url, false)
	if err != nil {
		t.Fatal(err)
	}
	conn := tls.Client(raw, link.ClientTLS(nil, caFingerprint, &cert, n.url, "hub1.*"))
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(deadline))
	if err := conn.HandshakeContext(ctx); err != nil {
		t.Fatal(err)
	}
	var hubCA *x509.Certificate
	for _, c := range conn.ConnectionState().PeerCertificates[1:] {
		if pki.MatchFingerprint(c, caFingerprint) {
			hubCA = c
		}
	}
	if err := linkproto.WriteFrame(conn, linkproto.Hello{Proto: linkproto.Version, Kind: linkproto.KindLeaf, Name: "forged"}); err != nil {
		t.Fatal(err)
	}
	var w linkproto.Welcome
	if err := linkproto.ReadFrame(conn, &w); err != nil {
		t.Fatal(err)
	}
	if w.Error == nil || w.Error.Code != linkproto.CodeBadCert || !strings.Contains(w.Error.Message, "not issued by this cluster's CA") {
		t.Errorf("welcome to a forged certificate = %+v, want a bad-certificate refusal", w.Error)
	}
	requireRefusal(t, n, "forged", "not issued by this cluster's CA")
	return hubCA
}

// requireRefusal checks that GET /api/v1/links lists a refusal of peer
// that says msg.
func requireRefusal(t *testing.T, n *node, peer, msg string) {
	t.Helper()
	for _, l := range n.links(t) {
		if l.State == "refused" && l.Peer == peer && strings.Contains(l.LastError, msg) {
			return
		}
	}
	t.Errorf("GET /api/v1/links lists no refusal of %s saying %q: %+v", peer, msg, n.links(t))
}

// otherCluster joins host-x to a second node with its own CA, then points
// it at n: the agent refuses n (its CA is not the pinned one) and keeps
// trying. With n's CA put in its identity in place of its own, the agent
// trusts n, and n refuses the agent's certificate: it exits non-zero.
func otherCluster(t *testing.T, n *node, hubCA *x509.Certificate) {
	other := startNode(t, "hub1.other")
	dir := agentDir(t)
	a := startAgent(t, "host-x", dir, other.token(t, 1, "1h").Token, other.url)
	eventually(t, "host-x is linked to hub1.other", func() bool { _, up := other.linkUp(t, "host-x"); return up })
	if code := a.terminate(t); code != 0 {
		t.Errorf("host-x exited with %d on SIGTERM, want 0", code)
	}

	a = startAgent(t, "host-x", dir, "", n.url)
	a.waitStderr(t, "the hub's certificate authority is not the one this host trusts")
	t.Logf("host-x pointed at another cluster's node: %s", lineWith(a.stderr.String(), "certificate authority"))
	if a.exited() {
		t.Errorf("host-x exited when its hub's CA was not the pinned one: %v; want it to keep trying", a.err)
	}
	if _, up := n.linkUp(t, "host-x"); up {
		t.Error("host-x linked to a node of another cluster")
	}
	if code := a.terminate(t); code != 0 {
		t.Errorf("host-x exited with %d on SIGTERM, want 0", code)
	}

	if hubCA == nil {
		t.Fatal("the node's TLS chain had no CA with the token's fingerprint")
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hubCA.Raw})
	if err := os.WriteFile(filepath.Join(dir, "identity", "ca.crt"), caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	a = startAgent(t, "host-x", dir, "", n.url)
	code := a.wait(t)
	last := lastLine(a.stderr.String())
	t.Logf("host-x with another cluster's certificate exited with %d: %s", code, last)
	if code == 0 || !strings.Contains(last, "refused this host") || !strings.Contains(last, "not issued by this cluster's CA") {
		t.Errorf("host-x with a certificate of another cluster exited with %d saying %q; want a non-zero exit saying it is not issued by this cluster's CA", code, last)
	}
	requireRefusal(t, n, "host-x", "not issued by this cluster's CA")
}

// lineWith is the first line of s that contains sub.
func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
