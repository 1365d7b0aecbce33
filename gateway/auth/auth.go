package auth

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Identity is who a client is, as learned from a token or the connect hook.
type Identity struct {
	UserID    string
	Channels  []string  // from the optional "channels" claim (or the hook's answer)
	ExpiresAt time.Time // zero when the hook gave no expiry
	Anonymous bool
}

// Config selects the keys and sources. At least one of HMACSecret,
// PublicKeyPEM, JWKSFile, HookURL or AllowAnonymous must be set.
type Config struct {
	HMACSecret   []byte // HS256; at least 32 bytes (RFC 7518 §3.2)
	PublicKeyPEM []byte // RS256 (RSA ≥ 2048 bits) or ES256 (P-256): "PUBLIC KEY", "RSA PUBLIC KEY" or "CERTIFICATE"
	JWKSFile     string // JWKS JSON with kid'ed RSA and EC P-256 keys; loaded by New and by Reload

	Issuer, Audience string        // checked when set
	Leeway           time.Duration // clock skew allowed for exp, nbf and iat: 0 to MaxLeeway

	QueryParam     string // query parameter holding a token; default "token"
	Cookie         string // cookie holding a token; "" = off
	AllowAnonymous bool   // no token at all → an anonymous identity instead of 401

	HookURL     string        // connect hook endpoint (http or https); "" = off
	HookTimeout time.Duration // default 3 s
	HTTPClient  *http.Client  // for the hook; redirects are never followed
}

// Authenticator verifies tokens and calls the connect hook. It is safe for
// concurrent use; Reload swaps the key set atomically.
type Authenticator struct {
	cfg    Config
	keys   atomic.Pointer[keyring]
	reload sync.Mutex // serialises Reload so two SIGHUPs cannot interleave
	client *http.Client
}

const (
	defaultQueryParam  = "token"
	defaultHookTimeout = 3 * time.Second
	minHMACSecret      = 32
)

// MaxLeeway bounds Config.Leeway. The leeway also lets an expired token
// in for that long; minutes of clock skew are a broken clock, not skew,
// and would keep a revoked token usable that much longer.
const MaxLeeway = 5 * time.Minute

// New checks cfg, parses the keys and loads the JWKS file.
func New(cfg Config) (*Authenticator, error) {
	if cfg.QueryParam == "" {
		cfg.QueryParam = defaultQueryParam
	}
	if cfg.HookTimeout <= 0 {
		cfg.HookTimeout = defaultHookTimeout
	}
	if cfg.Leeway < 0 || cfg.Leeway > MaxLeeway {
		return nil, fmt.Errorf("auth: leeway %v: want 0 to %v", cfg.Leeway, MaxLeeway)
	}
	if len(cfg.HMACSecret) > 0 && len(cfg.HMACSecret) < minHMACSecret {
		return nil, fmt.Errorf("auth: HMAC secret is %d bytes, HS256 needs at least %d", len(cfg.HMACSecret), minHMACSecret)
	}
	// Our copy: the caller may reuse or zero its slices.
	cfg.HMACSecret = bytes.Clone(cfg.HMACSecret)
	if len(cfg.HMACSecret) == 0 && len(cfg.PublicKeyPEM) == 0 && cfg.JWKSFile == "" &&
		cfg.HookURL == "" && !cfg.AllowAnonymous {
		return nil, errors.New("auth: no key, JWKS file, hook or anonymous access configured: every client would be refused")
	}
	if cfg.HookURL != "" {
		u, err := url.Parse(cfg.HookURL)
		if err != nil {
			return nil, fmt.Errorf("auth: hook URL: %w", err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("auth: hook URL %q: want an absolute http(s) URL", cfg.HookURL)
		}
	}
	a := &Authenticator{cfg: cfg, client: hookClient(cfg.HTTPClient)}
	var pemKey any
	if len(cfg.PublicKeyPEM) > 0 {
		k, err := parsePublicKeyPEM(cfg.PublicKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("auth: public key: %w", err)
		}
		pemKey = k
	}
	var jwks map[string]any
	if cfg.JWKSFile != "" {
		var err error
		if jwks, err = loadJWKS(cfg.JWKSFile); err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
	}
	a.keys.Store(newKeyring(&a.cfg, pemKey, jwks))
	return a, nil
}

// Reload re-reads the JWKS file (key rotation). On error the keys in use
// stay in place. Without a JWKS file it does nothing.
func (a *Authenticator) Reload() error {
	if a.cfg.JWKSFile == "" {
		return nil
	}
	a.reload.Lock()
	defer a.reload.Unlock()
	jwks, err := loadJWKS(a.cfg.JWKSFile)
	if err != nil {
		return fmt.Errorf("auth: reload: %w", err)
	}
	a.keys.Store(newKeyring(&a.cfg, a.keys.Load().pem, jwks))
	return nil
}

// HookEnabled reports whether a connect hook is configured. A gateway with a
// hook typically calls Authenticate when Token finds a token, and CallHook
// (on its bounded pool) when it does not.
func (a *Authenticator) HookEnabled() bool { return a.cfg.HookURL != "" }

// Authenticate extracts a token (Authorization: Bearer, then the query
// parameter in uri, then the cookie), verifies it and returns the identity.
// It does no I/O and may run on an event-loop worker.
func (a *Authenticator) Authenticate(uri string, header http.Header) (Identity, error) {
	tok, ok := a.Token(uri, header)
	if !ok {
		if a.cfg.AllowAnonymous {
			return Identity{Anonymous: true}, nil
		}
		return Identity{}, unauthorized(CodeTokenMissing, "token required", nil)
	}
	return a.Verify(tok)
}

// Verify checks a bare connection token (the handshake's, or one sent later
// by a refresh command).
func (a *Authenticator) Verify(token string) (Identity, error) {
	c, err := a.parse(token)
	if err != nil {
		return Identity{}, err
	}
	if c.Channel != nil {
		return Identity{}, unauthorized(CodeTokenWrongType, "subscription token used as connection token", nil)
	}
	return Identity{UserID: c.Subject, Channels: c.Channels, ExpiresAt: c.ExpiresAt.Time}, nil
}

// VerifySubscription checks a subscription token for channel: a valid JWT
// (same keys and rules as Verify) whose "channel" claim equals channel and
// whose "sub" equals userID, the connection's user. An anonymous connection
// (userID "") never matches, since tokens must carry a sub.
func (a *Authenticator) VerifySubscription(token, channel, userID string) error {
	c, err := a.parse(token)
	if err != nil {
		return err
	}
	if c.Channel == nil || *c.Channel != channel {
		return forbidden(CodeChannelMismatch, "token is for another channel", nil)
	}
	if c.Subject != userID {
		return forbidden(CodeUserMismatch, "token is for another user", nil)
	}
	return nil
}
