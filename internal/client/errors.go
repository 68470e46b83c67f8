package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Sentinel errors for failures that are not the API's answer. Errors from
// the API itself are *lobby.Error.
var (
	// ErrUnreachable: no HTTP answer came back (refused, timed out, DNS,
	// TLS handshake).
	ErrUnreachable = errors.New("cannot reach Lobby")
	// ErrNotLobby: something answered, but not in Lobby's JSON shape
	// (wrong URL, a proxy's error page, HTTP against HTTPS).
	ErrNotLobby = errors.New("not a Lobby server")
)

// transportError explains a request that got no answer. Cancellation is
// returned as the context's error; certificate problems as
// *FingerprintError or *UntrustedError; the rest wraps ErrUnreachable.
func (c *Client) transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var fe *FingerprintError
	if errors.As(err, &fe) {
		return fe
	}
	var ve *tls.CertificateVerificationError
	if errors.As(err, &ve) && len(ve.UnverifiedCertificates) > 0 {
		return &UntrustedError{URL: c.base, Fingerprint: Fingerprint(ve.UnverifiedCertificates[0].Raw), Err: ve.Err}
	}
	var he x509.HostnameError
	if errors.As(err, &he) && he.Certificate != nil {
		return &UntrustedError{URL: c.base, Fingerprint: Fingerprint(he.Certificate.Raw), Err: he}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) || strings.Contains(err.Error(), "HTTP response to HTTPS client") {
		return fmt.Errorf("%w at %s: %w; the server does not speak TLS there: use http:// in the URL", ErrUnreachable, c.base, err)
	}
	return fmt.Errorf("%w at %s: %w; is `lobby server` running?", ErrUnreachable, c.base, err)
}
