package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// forwardedHeaders is the allow-list of request headers sent to the hook:
// the credentials (Cookie, Authorization) and what a backend needs for its
// own policy. Everything else stays here, so the backend never sees headers
// a client invented to confuse it.
var forwardedHeaders = []string{
	"Cookie", "Authorization", "Origin", "User-Agent",
	"X-Forwarded-For", "X-Real-Ip", "Forwarded", "X-Forwarded-Proto", "X-Forwarded-Host",
	"Accept-Language",
}

// ForwardedHeaders returns the names of the headers CallHook forwards.
func ForwardedHeaders() []string { return slices.Clone(forwardedHeaders) }

// maxHookBody bounds what we read of a hook answer (and drain for reuse).
const maxHookBody = 64 << 10

type hookRequest struct {
	URI     string            `json:"uri"`
	Headers map[string]string `json:"headers"`
}

type hookResponse struct {
	User      *string  `json:"user"` // a pointer so a missing "user" is a bad answer, not anonymous
	Channels  []string `json:"channels"`
	ExpiresAt int64    `json:"expires_at"`
}

// hookClient wraps the configured client (or a default one) so redirects are
// never followed: a 3xx from an auth backend is a misconfiguration, and
// following it would replay the user's cookies to wherever it points.
func hookClient(c *http.Client) *http.Client {
	var out http.Client
	if c != nil {
		out = *c
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		// A reconnect storm sends thousands of hook calls to one backend;
		// the default of 2 idle connections per host would redial for most.
		tr.MaxIdleConnsPerHost = 64
		out.Transport = tr
	}
	out.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &out
}

// CallHook asks the connect hook who the client is (see the package doc for
// the protocol and the status mapping). It blocks for up to HookTimeout or
// until ctx is done: run it on a bounded pool, not on an event-loop worker.
func (a *Authenticator) CallHook(ctx context.Context, uri string, header http.Header) (Identity, error) {
	if a.cfg.HookURL == "" {
		return Identity{}, unavailable(errors.New("no connect hook configured"))
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.HookTimeout)
	defer cancel()
	body, err := json.Marshal(hookRequest{URI: uri, Headers: forwardable(header)})
	if err != nil {
		return Identity{}, unavailable(fmt.Errorf("connect hook: encode request: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.cfg.HookURL, bytes.NewReader(body))
	if err != nil {
		return Identity{}, unavailable(fmt.Errorf("connect hook: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return Identity{}, unavailable(fmt.Errorf("connect hook: %w", err))
	}
	defer func() {
		// Drain so the keep-alive connection goes back to the pool.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxHookBody))
		_ = resp.Body.Close()
	}()
	switch resp.StatusCode {
	case http.StatusOK:
		return a.hookIdentity(resp.Body)
	case http.StatusUnauthorized:
		return Identity{}, unauthorized(CodeHookUnauthorized, "unauthorized", nil)
	case http.StatusForbidden:
		return Identity{}, forbidden(CodeHookForbidden, "forbidden", nil)
	default:
		return Identity{}, unavailable(fmt.Errorf("connect hook: status %d", resp.StatusCode))
	}
}

func (a *Authenticator) hookIdentity(r io.Reader) (Identity, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxHookBody+1))
	if err != nil {
		return Identity{}, unavailable(fmt.Errorf("connect hook: read answer: %w", err))
	}
	if len(data) > maxHookBody {
		return Identity{}, unavailable(fmt.Errorf("connect hook: answer larger than %d bytes", maxHookBody))
	}
	var hr hookResponse
	if err := json.Unmarshal(data, &hr); err != nil {
		return Identity{}, unavailable(fmt.Errorf("connect hook: decode answer: %w", err))
	}
	if hr.User == nil {
		return Identity{}, unavailable(errors.New(`connect hook: answer has no "user"`))
	}
	id := Identity{UserID: *hr.User, Channels: hr.Channels}
	if hr.ExpiresAt != 0 {
		id.ExpiresAt = time.Unix(hr.ExpiresAt, 0)
		if !time.Now().Before(id.ExpiresAt) {
			return Identity{}, unauthorized(CodeTokenExpired, "session expired", nil)
		}
	}
	if id.UserID == "" {
		if !a.cfg.AllowAnonymous {
			return Identity{}, unauthorized(CodeHookUnauthorized, "unauthorized", errors.New("connect hook: anonymous answer, anonymous access off"))
		}
		id.Anonymous = true
	}
	return id, nil
}

// forwardable picks the allow-listed headers, one string each.
func forwardable(h http.Header) map[string]string {
	out := make(map[string]string, len(forwardedHeaders))
	for _, name := range forwardedHeaders {
		vals := h.Values(name)
		if len(vals) == 0 {
			continue
		}
		sep := ", "
		if name == "Cookie" {
			sep = "; " // RFC 6265 §5.4: cookie-pairs are joined with "; "
		}
		out[name] = strings.Join(vals, sep)
	}
	return out
}
