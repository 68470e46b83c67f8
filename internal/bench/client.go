package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// NewHTTPClient returns a keep-alive HTTP/1.1 client for loopback load
// that keeps up to conns idle connections (one per client goroutine) and
// ignores proxy settings from the environment.
func NewHTTPClient(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        conns + 16,
			MaxIdleConnsPerHost: conns + 16,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
		Timeout: time.Minute,
	}
}

// APIError is an answer of the REST API outside 2xx.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// Client calls a node's REST API as one signed-in user.
type Client struct {
	HTTP  *http.Client
	Base  string // e.g. http://127.0.0.1:41234
	Token string
}

// Call sends body (marshalled to JSON unless it is []byte or nil) and
// decodes a 2xx answer into out when out is not nil. Answers outside 2xx
// give an *APIError.
func (c *Client) Call(ctx context.Context, method, path string, body, out any) error {
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			return err
		}
	}
	_, err := call(ctx, c.HTTP, method, c.Base+path, c.Token, raw, out)
	return err
}

// call is one request; it returns the HTTP status with the error so that
// load loops can count refusals without allocating for them.
func call(ctx context.Context, hc *http.Client, method, url, token string, body []byte, out any) (int, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct{ Code, Message string }
		}
		_ = json.Unmarshal(answer, &e)
		if e.Error.Message == "" {
			e.Error.Message = string(bytes.TrimSpace(answer))
		}
		return resp.StatusCode, &APIError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if out != nil && len(answer) > 0 {
		if err := json.Unmarshal(answer, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode answer: %w", method, url, err)
		}
	}
	return resp.StatusCode, nil
}
