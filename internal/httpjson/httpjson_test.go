package httpjson

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"lobby/internal/lobby"
)

type sample struct {
	Name  string   `json:"name"`
	Size  int      `json:"size"`
	On    bool     `json:"on"`
	Tags  []string `json:"tags"`
	Inner struct {
		At string `json:"at"`
	} `json:"inner"`
}

func decode(body, contentType string) (sample, error) {
	r := httptest.NewRequest("POST", "/", strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	var s sample
	err := Decode(httptest.NewRecorder(), r, &s)
	return s, err
}

func TestDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, ctype string
		kind              lobby.Kind // "" means success
		msg               string
	}{
		{"ok", `{"name":"a","size":2,"on":true,"tags":["x"],"inner":{"at":"1"}}`, "application/json", "", ""},
		{"charset ok", `{"name":"a"}`, "application/json; charset=utf-8", "", ""},
		{"empty", ``, "", lobby.KindInvalid, "empty"},
		{"syntax", `{"name":}`, "", lobby.KindInvalid, "not valid JSON"},
		{"truncated", `{"name":"a"`, "", lobby.KindInvalid, "ends early"},
		{"unknown field", `{"nmae":"a"}`, "", lobby.KindInvalid, `unknown field "nmae"`},
		{"wrong type string", `{"size":"two"}`, "", lobby.KindInvalid, `field "size" must be a number, not string`},
		{"wrong type bool", `{"on":1}`, "", lobby.KindInvalid, `field "on" must be true or false`},
		{"wrong type array", `{"tags":"x"}`, "", lobby.KindInvalid, `field "tags" must be an array`},
		{"not an object", `[1,2]`, "", lobby.KindInvalid, "must be a JSON object"},
		{"trailing data", `{"name":"a"} {"name":"b"}`, "", lobby.KindInvalid, "after the JSON object"},
		{"wrong content type", `{"name":"a"}`, "text/plain", lobby.KindInvalid, "Content-Type"},
		{"too large", `{"name":"` + strings.Repeat("a", MaxBody) + `"}`, "", lobby.KindTooLarge, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := decode(tt.body, tt.ctype)
			if tt.kind == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if lobby.ErrorKind(err) != tt.kind || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %s %q, want %s containing %q", lobby.ErrorKind(err), err, tt.kind, tt.msg)
			}
		})
	}
}

func TestErrorStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err    error
		status int
		code   string
	}{
		{lobby.Errorf(lobby.KindNotFound, "x"), 404, "not_found"},
		{lobby.Errorf(lobby.KindConflict, "x"), 409, "conflict"},
		{lobby.Errorf(lobby.KindUnauthorized, "x"), 401, "unauthorized"},
		{lobby.Errorf(lobby.KindTooLarge, "x"), 413, "too_large"},
		{http.ErrBodyNotAllowed, 500, "internal"},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		Error(w, httptest.NewRequest("GET", "/", nil), nil, tt.err)
		if w.Code != tt.status || !strings.Contains(w.Body.String(), `"code":"`+tt.code+`"`) {
			t.Errorf("%v: got %d %s", tt.err, w.Code, w.Body)
		}
		if tt.status == 500 && strings.Contains(w.Body.String(), tt.err.Error()) {
			t.Errorf("internal error detail leaked: %s", w.Body)
		}
	}
}

// FuzzDecode checks that no body makes Decode panic or return an error
// that is not a user-facing one.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"name":"a","size":1}`, `{"tags":[1]}`, `{`, `[]`, `null`, `{"inner":{"at":5}}`, "{\"name\":\"\\u0000\"}", `{"size":1e400}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		_, err := decode(body, "")
		if err != nil && lobby.ErrorKind(err) == lobby.KindInternal {
			t.Fatalf("body %q gave an internal error: %v", body, err)
		}
	})
}
