package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate/internal/testutil"
)

const testJWTSecret = "0123456789abcdef0123456789abcdef" // HS256 needs 32 bytes

// signHS256 mints a connection token for user 42 with the given claims on
// top of sub and a one-hour exp.
func signHS256(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	c := jwt.MapClaims{"sub": "42", "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range claims {
		c[k] = v
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(testJWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestJWTLeewayDefault: with serve's default settings, a token minted on a
// clock a second ahead of the gateway's (iat or nbf one second in the
// future) is accepted, while one from a clock a minute ahead is still
// refused; --jwt-leeway 0 restores the strict check.
func TestJWTLeewayDefault(t *testing.T) {
	f, err := serveSettings(t, "--jwt-secret", testJWTSecret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ahead := func(d time.Duration) int64 { return now.Add(d).Unix() + 1 } // +1: Unix() rounds down
	for _, c := range []jwt.MapClaims{{"iat": ahead(0)}, {"nbf": ahead(time.Second)}, {"exp": ahead(-3 * time.Second)}} {
		if _, err := f.cfg.Auth.Verify(signHS256(t, c)); err != nil {
			t.Errorf("claims %v refused with the default leeway: %v", c, err)
		}
	}
	if _, err := f.cfg.Auth.Verify(signHS256(t, jwt.MapClaims{"iat": ahead(time.Minute)})); err == nil {
		t.Error("a token issued a minute in the future was accepted with the default leeway")
	}
	strict, err := serveSettings(t, "--jwt-secret", testJWTSecret, "--jwt-leeway", "0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := strict.cfg.Auth.Verify(signHS256(t, jwt.MapClaims{"iat": ahead(0)})); err == nil {
		t.Error("--jwt-leeway 0 accepted a token issued in the future")
	}
}

// writeJWKSFile replaces path with a JWKS holding key under kid, as a
// rotation would (a rename, so the gateway never reads half a file).
func writeJWKSFile(t *testing.T, path, kid string, key *ecdsa.PrivateKey) {
	t.Helper()
	raw, err := key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	doc, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid, "x": enc(raw[1:33]), "y": enc(raw[33:]),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	replaceFile(t, path, doc)
}

func replaceFile(t *testing.T, path string, content []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// signES256 mints a one-hour connection token for user 42 with key and kid.
func signES256(t *testing.T, kid string, key *ecdsa.PrivateKey) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"sub": "42", "exp": time.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// handshakeStatus upgrades to url with token as a Bearer credential and
// returns the status: 101, or the refusal's status.
func handshakeStatus(t *testing.T, url, token string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := ws.Dialer{Header: ws.HandshakeHeaderHTTP(http.Header{"Authorization": {"Bearer " + token}})}
	conn, _, _, err := d.Dial(ctx, url)
	var se ws.StatusError
	switch {
	case err == nil:
		conn.Close()
		return http.StatusSwitchingProtocols
	case errors.As(err, &se):
		return int(se)
	}
	t.Fatalf("handshake with %s: %v", url, err)
	return 0
}

// waitLog waits until logs holds want n times.
func waitLog(t *testing.T, logs *testutil.SyncBuffer, want string, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); strings.Count(logs.String(), want) < n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q (#%d) in the log:\n%s", want, n, logs.String())
		}
	}
}

// TestServeReloadsKeysOnHangup: SIGHUP makes a running gateway re-read
// --jwks-file, so a token signed with a rotated-in key is accepted (and
// one with the rotated-out key refused) without a restart. A SIGHUP with a
// file that does not load keeps the keys in use, and the gateway runs on
// and still drains on SIGTERM.
func TestServeReloadsKeysOnHangup(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildWsgate(t)
	oldKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	newKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	writeJWKSFile(t, jwks, "old", oldKey)

	var logs testutil.SyncBuffer
	addr, debug := testutil.FreeAddr(t), testutil.FreeAddr(t)
	cmd := exec.Command(bin, "serve", "--listen", addr, "--debug-listen", debug, "--jwks-file", jwks)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitReady(t, debug, &logs, 20*time.Second)
	url := "ws://" + addr + "/ws"
	oldTok, newTok := signES256(t, "old", oldKey), signES256(t, "new", newKey)
	expect := func(when string, wantOld, wantNew int) {
		t.Helper()
		if got := handshakeStatus(t, url, oldTok); got != wantOld {
			t.Errorf("%s: old key's token got %d, want %d", when, got, wantOld)
		}
		if got := handshakeStatus(t, url, newTok); got != wantNew {
			t.Errorf("%s: new key's token got %d, want %d", when, got, wantNew)
		}
	}
	expect("before the rotation", 101, 401)

	writeJWKSFile(t, jwks, "new", newKey)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, &logs, "SIGHUP: keys reloaded", 1)
	expect("after the rotation and SIGHUP", 401, 101)

	replaceFile(t, jwks, []byte(`{"keys": [`))
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, &logs, "SIGHUP: keys not reloaded, the previous keys stay in use", 1)
	waitReady(t, debug, &logs, 5*time.Second)
	expect("after a SIGHUP with a broken file", 401, 101)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil || !strings.Contains(logs.String(), "shutdown complete") {
		t.Fatalf("after SIGTERM: %v, want exit 0 after a drain\n%s", err, logs.String())
	}
}

// TestServeSurvivesHangupWithoutKeys: a gateway with no JWKS file to
// reload logs a SIGHUP and runs on, instead of being ended by the signal's
// default action without a drain.
func TestServeSurvivesHangupWithoutKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildWsgate(t)
	var logs testutil.SyncBuffer
	debug := testutil.FreeAddr(t)
	cmd := exec.Command(bin, "serve", "--listen", testutil.FreeAddr(t), "--debug-listen", debug)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitReady(t, debug, &logs, 20*time.Second)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, &logs, "SIGHUP: no --jwks-file to reload", 1)
	waitReady(t, debug, &logs, 5*time.Second)
}
