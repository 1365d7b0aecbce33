package client

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// verdict is what the client does after a connection ended or an attempt
// failed (codec/README.md §8).
type verdict struct {
	stop       bool          // do not reconnect: the error is final
	slow       bool          // 4008 / 4029: back off longer
	retryAfter time.Duration // the server asked to wait at least this long
}

// judgeCloseCode applies the close-code table.
func judgeCloseCode(code int) verdict {
	switch {
	case code == 4008 || code == 4029:
		return verdict{slow: true}
	case code >= 4500 && code <= 4999:
		return verdict{stop: true} // wsgate: do not reconnect as is
	case code == 1002 || code == 1003 || code == 1007 || code == 1009:
		return verdict{stop: true} // the client is broken: do not loop
	}
	// 1000, 1001, 4000–4499 (4004: the next attempt fetches a new token,
	// as every attempt does), 1006 and other transport failures.
	return verdict{}
}

// judge classifies why a connection ended or an attempt failed.
func judge(err error) verdict {
	var ce *CloseError
	var he *HandshakeError
	switch {
	case errors.As(err, &ce):
		return judgeCloseCode(ce.Code)
	case errors.As(err, &he):
		return judgeHandshake(he)
	case errors.Is(err, ErrTokenSource), errors.Is(err, ErrProtocol):
		return verdict{stop: true}
	}
	return verdict{} // network errors, ping timeouts, a full event queue
}

// judgeHandshake: 401/403 stop (new credentials are needed); 429 and 503
// are retried after Retry-After; other 4xx mean a broken request or URL
// (stop), 5xx a server in trouble (retry).
func judgeHandshake(he *HandshakeError) verdict {
	switch s := he.StatusCode; {
	case s == http.StatusTooManyRequests || s == http.StatusServiceUnavailable:
		return verdict{retryAfter: he.RetryAfter}
	case s == http.StatusRequestTimeout:
		return verdict{}
	case s >= 400 && s < 500:
		return verdict{stop: true}
	}
	return verdict{}
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(min(s, 3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), time.Hour)
	}
	return 0
}

// window is attempt n's backoff window: Min·2ⁿ capped at Max, 16 times
// wider after a slow-consumer or rate-limit close.
func (b Backoff) window(attempt int, slow bool) time.Duration {
	shift := min(attempt, 40)
	if slow {
		shift += 4
	}
	w := b.Min
	for i := 0; i < shift && w < b.Max; i++ {
		w *= 2
	}
	return min(w, b.Max)
}

// delay draws the wait before attempt n: full jitter over the window (at
// least half of it when slow), after any Retry-After the server asked for.
func (b Backoff) delay(attempt int, v verdict) time.Duration {
	w := b.window(attempt, v.slow)
	d := time.Duration(rand.Int64N(int64(w) + 1))
	if v.slow {
		d = w/2 + d/2
	}
	return v.retryAfter + d
}
