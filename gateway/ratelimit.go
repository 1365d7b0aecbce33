package gateway

// limiter is a token bucket for a session's commands: rate tokens per
// second up to burst (both from the server's config, so a connection does
// not carry them). It lives in the session (worker-only), so it needs no
// lock. 16 bytes: a float32 holds any burst a config allows exactly
// enough.
type limiter struct {
	last   int64 // server clock
	tokens float32
	denied int32 // consecutive refusals
}

func newLimiter(burst int, now int64) limiter {
	return limiter{tokens: float32(burst), last: now}
}

// allow takes a token if there is one (rate ≤ 0: no limit).
func (l *limiter) allow(now int64, rate float64, burst int) bool {
	if rate <= 0 {
		return true
	}
	l.tokens = float32(min(float64(burst), float64(l.tokens)+float64(now-l.last)/1e9*rate))
	l.last = now
	if l.tokens >= 1 {
		l.tokens--
		l.denied = 0
		return true
	}
	l.denied++
	return false
}
