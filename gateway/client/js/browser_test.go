package js_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wsgate/wsgate/gateway/broker/redis/redistest"
)

// TestDemoInBrowser is acceptance 4 of issue 13: headless Chromium loads the
// demo page (served by wsgate --demo) in two tabs, each from its own gateway
// of one Redis-backed pair. A message sent in one tab shows in the other.
// Then tab 1's gateway is SIGKILLed; tab 2 sends while it is down; the
// gateway restarts on the same address and tab 1 reconnects by itself and
// shows the missed messages, replayed, each exactly once. The screenshot of
// tab 1 is saved and its path logged.
func TestDemoInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium, redis-server and two wsgate processes (-short)")
	}
	chrome, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not found on PATH (make deps installs the Debian package): %v", err)
	}
	rs := redistest.StartStandalone(t)
	flags := []string{"--demo", "--broker", "redis", "--redis-url", rs.URL(), "--history-size", "1000"}
	a := startGateway(t, flags...)
	b := startGateway(t, flags...)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, chromeFlags(chrome, t.TempDir())...)
	defer cancelAlloc()
	const channel = "chat:browser"
	open := func(tab context.Context, g *gatewayProc, name string) {
		t.Helper()
		url := fmt.Sprintf("http://%s/?channel=%s&name=%s", g.addr, channel, name)
		do(t, tab, "open "+url,
			chromedp.Navigate(url),
			chromedp.WaitVisible(chromedp.CSS(`#state[data-state="connected"]`)),
			waitJS(`[...document.querySelectorAll("#messages .note")].some(n => n.textContent === "joined `+channel+`")`),
		)
	}
	tab1, cancel1 := chromedp.NewContext(alloc)
	defer cancel1()
	do(t, tab1, "start Chromium") // the first Run starts the browser
	defer watchConsole(t, tab1, "tab 1")()
	open(tab1, a, "alice")
	tab2, cancel2 := chromedp.NewContext(tab1) // a second tab of the same browser
	defer cancel2()
	do(t, tab2, "open a second tab")
	defer watchConsole(t, tab2, "tab 2")()
	open(tab2, b, "bob")

	send(t, tab1, "hello from alice")
	waitTexts(t, tab2, "hello from alice")
	send(t, tab2, "hi alice")
	waitTexts(t, tab1, "hello from alice", "hi alice")

	// Tab 1's gateway dies; tab 2 goes on talking through the other one.
	if err := a.stop(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	do(t, tab1, "see the connection lost", chromedp.WaitVisible(chromedp.CSS(`#state[data-state="connecting"]`)))
	missed := []string{"missed 1", "missed 2", "missed 3"}
	for _, m := range missed {
		send(t, tab2, m)
	}
	waitTexts(t, tab2, append([]string{"hello from alice", "hi alice"}, missed...)...)
	if err := a.start(); err != nil {
		t.Fatal(err)
	}
	do(t, tab1, "reconnect by itself", chromedp.WaitVisible(chromedp.CSS(`#state[data-state="connected"]`)))
	waitTexts(t, tab1, "hello from alice", "hi alice", "missed 1 [replayed]", "missed 2 [replayed]", "missed 3 [replayed]")
	do(t, tab1, "the resume note", waitJS(`[...document.querySelectorAll("#messages .note")].some(n => n.textContent === "resumed: 3 missed messages replayed")`))
	send(t, tab1, "back again")
	waitTexts(t, tab2, "hello from alice", "hi alice", "missed 1", "missed 2", "missed 3", "back again")

	png := runValue(t, tab1, "screenshot", chromedp.FullScreenshot(100))
	// Kept past the test for a look; a path another user's run owns is
	// not this test's failure.
	path := filepath.Join(os.TempDir(), "wsgate-demo-screenshot.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Logf("screenshot (%d bytes) not saved: %v", len(png), err)
		return
	}
	t.Logf("screenshot of tab 1 after the restart: %s (%d bytes)", path, len(png))
}

// chromeFlags: headless, and quiet — this machine's network is closed, and
// without these Chromium keeps trying to reach its services.
func chromeFlags(exe, profile string) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoSandbox, // root cannot use Chromium's sandbox
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(900, 760),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("safebrowsing-disable-auto-update", true),
	}
}

// watchConsole logs the tab's console (the browser's own log included)
// and fails the test on an uncaught exception. The returned func stops it
// and waits, so nothing logs after the test ended.
func watchConsole(t *testing.T, tab context.Context, name string) (stop func()) {
	ctx, cancel := context.WithCancel(tab)
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() {
				t.Errorf("%s: uncaught exception: %s", name, m.Text)
				continue
			}
			t.Logf("%s console: %s", name, m)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// do runs the actions in tab within 30 s.
func do(t *testing.T, tab context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 30*time.Second)
	defer cancel()
	if len(actions) == 0 {
		ctx = tab // the first Run of a tab must not have a deadline: it would end the tab with it
	}
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// runValue runs one action that returns a value, within 30 s.
func runValue[T any](t *testing.T, tab context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// waitJS waits until expr is truthy in the page.
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	poll := chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond))
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := poll(ctx, t)
		return err
	})
}

func send(t *testing.T, tab context.Context, text string) {
	t.Helper()
	do(t, tab, "send "+text,
		chromedp.SendKeys(chromedp.CSS("#text"), text),
		chromedp.Click(chromedp.CSS("#sendbtn")),
		waitJS(`document.querySelector("#text").value === ""`),
	)
}

// messagesJS lists the chat lines of a tab, " [replayed]" marking replays.
const messagesJS = `[...document.querySelectorAll("#messages .msg")].map(li =>
	li.querySelector(".text").textContent + (li.classList.contains("replayed") ? " [replayed]" : ""))`

// waitTexts waits until the tab shows exactly want, in order (bounded).
func waitTexts(t *testing.T, tab context.Context, want ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := runValue(t, tab, "read messages", chromedp.Evaluate[[]string](messagesJS))
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) || len(got) > len(want) {
			t.Fatalf("messages %q, want %q", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
