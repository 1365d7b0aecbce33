package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/golang-jwt/jwt/v5"
)

// maxTokenLen bounds the work a client can make us do before the signature
// check: a JWT is a few hundred bytes, a fat one a few KiB.
const maxTokenLen = 8 << 10

var errSubMissing = errors.New("token has no sub claim")

// tokenClaims are the claims we read. jwt calls Validate after its own time
// checks and joins the errors, so classify sees every failure at once.
type tokenClaims struct {
	jwt.RegisteredClaims
	Channels []string `json:"channels,omitempty"`
	Channel  *string  `json:"channel,omitempty"` // set only in subscription tokens

	wantIss, wantAud string
}

// UnmarshalJSON refuses time claims that are not JSON numbers. jwt's
// NumericDate decodes through json.Number, which also accepts a string
// holding digits ("exp": "1999999999"); RFC 7519 §2 says a NumericDate is a
// number, and a token that bends the type is not one we issued.
func (c *tokenClaims) UnmarshalJSON(b []byte) error {
	var times struct {
		Exp json.RawMessage `json:"exp"`
		Nbf json.RawMessage `json:"nbf"`
		Iat json.RawMessage `json:"iat"`
	}
	if err := json.Unmarshal(b, &times); err != nil {
		return err
	}
	for _, t := range []struct {
		name string
		raw  json.RawMessage
	}{{"exp", times.Exp}, {"nbf", times.Nbf}, {"iat", times.Iat}} {
		if t.raw != nil && !isJSONNumber(t.raw) {
			return fmt.Errorf("claim %s is %s, not a number", t.name, t.raw)
		}
	}
	type plain tokenClaims // the same fields without this method
	return json.Unmarshal(b, (*plain)(c))
}

// isJSONNumber reports whether raw (one JSON value, as json.RawMessage
// holds it) is a number: not a string, null, bool, array or object.
func isJSONNumber(raw json.RawMessage) bool {
	return len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9')
}

// Validate checks iss and aud here rather than through jwt's options,
// because jwt reports a missing iss or aud as a "required claim missing",
// which we could not tell from a missing exp.
func (c *tokenClaims) Validate() error {
	var errs []error
	if c.wantIss != "" && c.Issuer != c.wantIss {
		errs = append(errs, fmt.Errorf("%w: %q", jwt.ErrTokenInvalidIssuer, c.Issuer))
	}
	if c.wantAud != "" && !slices.Contains(c.Audience, c.wantAud) {
		errs = append(errs, fmt.Errorf("%w: %q", jwt.ErrTokenInvalidAudience, []string(c.Audience)))
	}
	if c.Subject == "" {
		errs = append(errs, errSubMissing)
	}
	return errors.Join(errs...)
}

// parse verifies the signature and the claims common to every token kind.
func (a *Authenticator) parse(token string) (*tokenClaims, error) {
	if token == "" {
		return nil, unauthorized(CodeTokenMissing, "token required", nil)
	}
	if len(token) > maxTokenLen {
		return nil, unauthorized(CodeTokenMalformed, "malformed token", fmt.Errorf("token is %d bytes, limit %d", len(token), maxTokenLen))
	}
	k := a.keys.Load()
	c := &tokenClaims{wantIss: a.cfg.Issuer, wantAud: a.cfg.Audience}
	t, err := k.parser.ParseWithClaims(token, c, k.keyfunc)
	if err != nil {
		// jwt reports a refused algorithm as a bad signature; say which it
		// is, since "alg: none" or HS256-vs-RSA is an attack, not a glitch.
		if t != nil && !errors.Is(err, jwt.ErrTokenMalformed) && !k.allows(t) {
			return nil, unauthorized(CodeAlgorithmInvalid, "signing algorithm not allowed", err)
		}
		return nil, classify(err)
	}
	return c, nil
}
