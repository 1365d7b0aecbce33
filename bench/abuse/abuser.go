package abuse

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// AbuserArgs tell "wsbench abuser" what to do.
type AbuserArgs struct {
	Mode      string        // flood or storm
	Addr      string        // the gateway
	Channel   string        // flood
	Reconnect bool          // flood
	Conns     int           // storm
	IPs       int           // storm
	Hold      time.Duration // storm
}

func (a AbuserArgs) argv() []string {
	return []string{"--mode", a.Mode, "--addr", a.Addr, "--channel", a.Channel, "--reconnect=" + strconv.FormatBool(a.Reconnect),
		"--conns", strconv.Itoa(a.Conns), "--ips", strconv.Itoa(a.IPs), "--hold", a.Hold.String()}
}

// abuserProc is a running abuser: "wsbench abuser" in its own process, or
// goroutines of this one.
type abuserProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr *bytes.Buffer
	local  func(v *Variant) // in process: stop and record
}

// startAbuser starts the abuse; it is under way when this returns.
func (r *runner) startAbuser(a AbuserArgs, inProcess bool) (*abuserProc, error) {
	if inProcess {
		switch a.Mode {
		case VariantFlood:
			f := startFlood(a.Addr, a.Channel, a.Reconnect)
			return &abuserProc{local: func(v *Variant) { v.Flood = f.stop() }}, nil
		case VariantStall:
			s := startStall(a.Addr, a.Conns)
			return &abuserProc{local: func(v *Variant) { v.Stall = s.stop() }}, nil
		default:
			s := startStorm(a.Addr, a.Conns, a.IPs, a.Hold)
			return &abuserProc{local: func(v *Variant) { v.Storm = s.stop() }}, nil
		}
	}
	cmd := exec.Command(r.cfg.Self, append([]string{"abuser"}, a.argv()...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &abuserProc{cmd: cmd, stderr: &bytes.Buffer{}}
	cmd.Stderr = p.stderr
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.stdout = bufio.NewReader(out)
	start := cmd.Start
	if r.cfg.AbuserSched == SchedIdle {
		start = func() error { return startIdle(cmd) }
	}
	if err := start(); err != nil {
		return nil, fmt.Errorf("start %s abuser: %w", r.cfg.Self, err)
	}
	if line, err := p.stdout.ReadString('\n'); err != nil || !strings.Contains(line, "started") {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("abuser did not start (%q, %v): %s", line, err, p.stderr)
	}
	return p, nil
}

// finish stops the abuse and puts what the abuser saw into v.
func (p *abuserProc) finish(v *Variant) error {
	if p.local != nil {
		p.local(v)
		return nil
	}
	_ = p.stdin.Close()
	line, rerr := p.stdout.ReadString('\n')
	werr := p.cmd.Wait()
	if rerr != nil || werr != nil {
		return fmt.Errorf("%v %v: %s", rerr, werr, p.stderr)
	}
	switch v.Variant {
	case VariantFlood:
		v.Flood = &FloodStats{}
		return json.Unmarshal([]byte(line), v.Flood)
	case VariantStall:
		v.Stall = &StallStats{}
		return json.Unmarshal([]byte(line), v.Stall)
	default:
		v.Storm = &StormStats{}
		return json.Unmarshal([]byte(line), v.Storm)
	}
}

// RunAbuser is "wsbench abuser": the abuse a says against a gateway until
// stdin closes (nil: never) or ctx ends, then what it saw as one JSON line
// on stdout, after a first line that says it started.
func RunAbuser(ctx context.Context, a AbuserArgs, stdin io.Reader, stdout io.Writer) error {
	var finish func() any
	switch a.Mode {
	case VariantFlood:
		f := startFlood(a.Addr, a.Channel, a.Reconnect)
		finish = func() any { return f.stop() }
	case VariantStall:
		s := startStall(a.Addr, a.Conns)
		finish = func() any { return s.stop() }
	default:
		s := startStorm(a.Addr, a.Conns, a.IPs, a.Hold)
		finish = func() any { return s.stop() }
	}
	fmt.Fprintln(stdout, `{"event":"started"}`)
	eof := make(chan struct{})
	if stdin != nil {
		go func() {
			_, _ = io.Copy(io.Discard, stdin)
			close(eof)
		}()
	}
	select {
	case <-eof:
	case <-ctx.Done():
	}
	return json.NewEncoder(stdout).Encode(finish())
}
