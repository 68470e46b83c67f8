// Package client is a typed Go client for Lobby's REST API (/api/v1) and
// its console gateway, so that the CLI and other Go programs speak the API
// through one place that knows its error shape, paging and TLS pinning.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"lobby/internal/lobby"
)

// Body limits: answers larger than these are refused rather than read.
const (
	MaxBody      = 16 << 20 // a successful answer
	maxErrorBody = 64 << 10 // an error answer
)

// Client calls one Lobby server. It is safe for concurrent use.
type Client struct {
	base  string // scheme://host[:port][/prefix], no trailing slash
	token string
	hc    *http.Client
}

// Option configures a Client.
type Option func(*options) error

type options struct {
	token       string
	hc          *http.Client
	caFile      string
	fingerprint string
}

// WithToken authenticates every call with a bearer token.
func WithToken(token string) Option {
	return func(o *options) error { o.token = token; return nil }
}

// WithHTTPClient makes the client use hc. When TLS options are also given,
// hc's transport must be an *http.Transport (it is cloned, not modified).
func WithHTTPClient(hc *http.Client) Option {
	return func(o *options) error {
		if hc == nil {
			return errors.New("nil HTTP client")
		}
		o.hc = hc
		return nil
	}
}

// WithCAFile trusts the PEM certificates in path (in addition to nothing
// else: the system roots are not used) to verify the server.
func WithCAFile(path string) Option {
	return func(o *options) error { o.caFile = path; return nil }
}

// WithFingerprint pins the server's leaf certificate by its SHA-256
// fingerprint (see ParseFingerprint for accepted forms). The chain is then
// not verified: the fingerprint alone decides. A mismatch fails every call
// with a *FingerprintError.
func WithFingerprint(fp string) Option {
	return func(o *options) error {
		if _, err := ParseFingerprint(fp); err != nil {
			return err
		}
		o.fingerprint = fp
		return nil
	}
}

// New returns a client for the server at baseURL, e.g.
// "https://lobby.example.com:8443". A URL without a scheme is taken as
// https. It returns an error for a malformed URL, fingerprint or CA file.
func New(baseURL string, opts ...Option) (*Client, error) {
	var o options
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	base, err := normalizeURL(baseURL)
	if err != nil {
		return nil, err
	}
	hc, err := httpClient(&o)
	if err != nil {
		return nil, err
	}
	return &Client{base: base, token: o.token, hc: hc}, nil
}

// normalizeURL checks a server URL and strips what does not belong to the
// base: query, fragment, trailing slash.
func normalizeURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", errors.New("no server URL given")
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("server URL %q is not valid: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("server URL %q is not valid: use http:// or https://", raw)
	}
	if u.Host == "" {
		return "", fmt.Errorf("server URL %q is not valid: it names no host", raw)
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return strings.TrimRight(u.String(), "/"), nil
}

// BaseURL returns the server's URL as the client uses it.
func (c *Client) BaseURL() string { return c.base }

// call sends one API request. in, when not nil, is sent as JSON; out, when
// not nil, receives the JSON answer. API errors come back as *lobby.Error;
// see transportError for the others.
func (c *Client) call(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return c.apiError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxBody))
		return nil
	}
	b, err := readLimited(resp.Body, MaxBody)
	if err != nil {
		return fmt.Errorf("read answer from %s: %w", c.base, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return c.notLobby(resp, b)
	}
	return nil
}

// readLimited reads r whole, failing when it holds more than limit bytes.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("the answer is larger than %d bytes", limit)
	}
	return b, nil
}

// apiError turns an error answer into a *lobby.Error, or an ErrNotLobby
// error when it is not in Lobby's shape.
func (c *Client) apiError(resp *http.Response) error {
	b, _ := readLimited(resp.Body, maxErrorBody)
	var e struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &e) != nil || e.Error == nil || e.Error.Code == "" {
		return c.notLobby(resp, b)
	}
	msg := e.Error.Message
	if msg == "" {
		msg = strings.ReplaceAll(e.Error.Code, "_", " ")
	}
	return &lobby.Error{Kind: lobby.Kind(e.Error.Code), Message: msg}
}

// notLobby describes an answer that Lobby would not have given.
func (c *Client) notLobby(resp *http.Response, body []byte) error {
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		ct = "no content type"
	}
	hint := "is the URL right, and is Lobby behind it?"
	if strings.HasPrefix(c.base, "http://") && bytes.Contains(body, []byte("HTTPS server")) {
		hint = "the server speaks HTTPS: use https:// in the URL"
	}
	snippet := ""
	if mt, _, _ := mime.ParseMediaType(ct); mt != "application/json" && len(body) > 0 {
		snippet = fmt.Sprintf(" %q", excerpt(body, 80))
	}
	return fmt.Errorf("%w: %s answered %s (%s)%s instead of Lobby's JSON; %s",
		ErrNotLobby, c.base, resp.Status, ct, snippet, hint)
}

// excerpt returns the first n bytes of b as valid, single-line text.
func excerpt(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "")), " ")
}
