package wait

import (
	"context"
	"testing"
	"time"
)

func TestFor(t *testing.T) {
	n := 0
	if !For(context.Background(), time.Second, func() bool { n++; return n == 3 }) || n != 3 {
		t.Fatalf("For gave up, or polled %d times", n)
	}
	if For(context.Background(), 10*time.Millisecond, func() bool { return false }) {
		t.Fatal("For held a condition that never holds")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if For(ctx, time.Minute, func() bool { return false }) || time.Since(start) > time.Second {
		t.Fatal("For outlived its context")
	}
}

func TestSleep(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	Sleep(ctx, time.Minute)
	Sleep(context.Background(), -time.Second)
	if time.Since(start) > time.Second {
		t.Fatal("Sleep outlived its context")
	}
	start = time.Now()
	Sleep(context.Background(), 20*time.Millisecond)
	if time.Since(start) < 20*time.Millisecond {
		t.Fatal("Sleep returned early")
	}
}
