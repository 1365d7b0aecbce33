package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/wsgate/wsgate/codec"
)

// session is one WebSocket connection. Its reader goroutine decodes every
// server frame and applies it (replies to their callers, pushes to their
// subscriptions) in the order the server sent them; a pinger checks the
// server is alive. Both end with the session, which the run loop waits for.
type session struct {
	c       *Client
	ws      *websocket.Conn
	msgType websocket.MessageType
	started time.Time

	done   chan struct{}   // closed when the session has ended
	ctx    context.Context // cancelled when the session has ended
	cancel context.CancelFunc
	// readCtx bounds the reader's reads; cancelling it closes the socket
	// at once (the library's way to abort a close handshake).
	readCtx   context.Context
	abortRead context.CancelFunc
	endOnce   sync.Once
	endErr    error // why it ended; written once, before done is closed
	wg        sync.WaitGroup

	// undoing counts, per channel, the subscribes the application gave up
	// while they were in flight here, each undone by an unsubscribe once
	// its reply comes (guarded by c.mu, like the subscriptions).
	undoing map[string]int

	mu         sync.Mutex
	pending    map[uint32]replyFunc // commands awaiting their reply
	failed     bool                 // failPending ran: register nothing more
	refreshing bool                 // a token refresh is under way
}

// replyFunc receives a command's reply on the reader goroutine, or a nil
// frame and an error when the session ended first. It must not block; the
// frame is valid only during the call.
type replyFunc func(f *codec.ServerFrame, err error)

// connect makes one connection attempt.
func (c *Client) connect(ctx context.Context) (*session, error) {
	token, err := c.token(ctx)
	if err != nil {
		return nil, err
	}
	h := c.opts.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	dctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout)
	defer cancel()
	want := c.opts.Encoding.Subprotocol()
	ws, resp, err := websocket.Dial(dctx, c.url, &websocket.DialOptions{
		HTTPClient: c.http, HTTPHeader: h, Subprotocols: []string{want},
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, &HandshakeError{StatusCode: resp.StatusCode, RetryAfter: retryAfter(resp.Header, time.Now()), Err: err}
		}
		return nil, fmt.Errorf("client: dial: %w", err)
	}
	// A server that selects no subprotocol speaks MessagePack (§1).
	if got := ws.Subprotocol(); got != want && (got != "" || c.opts.Encoding != codec.Msgpack) {
		ws.Close(websocket.StatusProtocolError, "subprotocol")
		return nil, fmt.Errorf("%w: asked for subprotocol %q, got %q", ErrProtocol, want, got)
	}
	ws.SetReadLimit(c.opts.MaxMessageBytes)
	s := &session{c: c, ws: ws, started: time.Now(), done: make(chan struct{}), pending: map[uint32]replyFunc{},
		msgType: websocket.MessageBinary}
	if c.opts.Encoding == codec.JSON {
		s.msgType = websocket.MessageText
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.readCtx, s.abortRead = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.read()
	if c.opts.PingInterval > 0 {
		s.wg.Add(1)
		go s.ping()
	}
	return s, nil
}

// token returns the credentials for the next handshake or refresh.
func (c *Client) token(ctx context.Context) (string, error) {
	if c.opts.TokenSource == nil {
		return c.opts.Token, nil
	}
	t, err := c.opts.TokenSource(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("%w: %w", ErrTokenSource, err)
	}
	return t, nil
}

// end records why the session ended (the first cause wins) and wakes the
// run loop. It does not close the socket.
func (s *session) end(err error) {
	s.endOnce.Do(func() {
		s.endErr = err
		close(s.done)
		s.cancel()
	})
}

func (s *session) cause() error {
	<-s.done
	return s.endErr
}

// closeTimeout bounds the wait for the server's answer to our close frame.
const closeTimeout = time.Second

// close ends the session with a close handshake; a server that does not
// answer within closeTimeout has its socket closed under it.
func (s *session) close(code websocket.StatusCode, reason string) {
	s.end(&localClose{code: int(code), reason: reason})
	closed := make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.ws.Close(code, reason)
		close(closed)
	}()
	t := time.NewTimer(closeTimeout)
	defer t.Stop()
	select {
	case <-closed:
	case <-t.C:
		s.abortRead()
	}
}

// localClose is a session the client ended itself.
type localClose struct {
	code   int
	reason string
}

func (e *localClose) Error() string {
	return fmt.Sprintf("closed by the client (%d %s)", e.code, e.reason)
}

// wait returns when the session's goroutines have ended.
func (s *session) wait() { s.wg.Wait() }

// read is the session's reader goroutine.
func (s *session) read() {
	defer s.wg.Done()
	var f codec.ServerFrame
	for {
		typ, msg, err := s.ws.Read(s.readCtx)
		if err != nil {
			s.end(readError(err))
			_ = s.ws.CloseNow()
			s.abortRead()
			return
		}
		if typ != s.msgType {
			s.fail(websocket.StatusUnsupportedData, "wrong message type",
				fmt.Errorf("%w: a %v message on a %v connection", ErrProtocol, typ, s.c.opts.Encoding))
			return
		}
		if err := codec.DecodeServerFrame(s.c.opts.Encoding, msg, &f); err != nil {
			s.fail(websocket.StatusInvalidFramePayloadData, "undecodable frame", fmt.Errorf("%w: %w", ErrProtocol, err))
			return
		}
		if err := s.c.handleFrame(s, &f); err != nil {
			s.fail(websocket.StatusNormalClosure, "client queue full", err)
			return
		}
	}
}

// fail ends the session for a local reason, telling the server. Called
// by the reader (which then returns: the close handshake reads for itself)
// or by another of the session's goroutines.
func (s *session) fail(code websocket.StatusCode, reason string, err error) {
	s.end(err)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.ws.Close(code, reason)
	}()
}

// readError turns the library's read error into ours: a close frame from
// the server becomes a *CloseError.
func readError(err error) error {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return &CloseError{Code: int(ce.Code), Reason: ce.Reason}
	}
	if errors.Is(err, websocket.ErrMessageTooBig) {
		return fmt.Errorf("client: server message over MaxMessageBytes: %w", err)
	}
	return fmt.Errorf("client: connection lost: %w", err)
}

// ping checks liveness: a server that does not answer a ping within
// PongTimeout is treated as gone.
func (s *session) ping() {
	defer s.wg.Done()
	t := time.NewTicker(s.c.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.c.opts.PongTimeout)
		err := s.ws.Ping(ctx)
		cancel()
		if err != nil {
			select {
			case <-s.done: // ended meanwhile: the ping failed because of it
			default:
				s.end(fmt.Errorf("client: no pong within %v: %w", s.c.opts.PongTimeout, err))
				_ = s.ws.CloseNow()
			}
			return
		}
	}
}

// errNotSent: the session had ended before the command was written, so it
// certainly did not take effect.
var errNotSent = fmt.Errorf("%w (the command was not sent)", ErrDisconnected)

// send writes one command; reply, when not nil, is registered to receive
// its answer (the command gets a fresh id). A write that fails ends the
// session, which fails the reply with ErrDisconnected.
func (s *session) send(cmd *codec.Command, reply replyFunc) error {
	select {
	case <-s.done: // ended, its socket maybe not yet closed: do not write
		return errNotSent
	default:
	}
	if reply != nil {
		cmd.ID = s.c.newID()
		s.mu.Lock()
		if s.failed {
			s.mu.Unlock()
			return errNotSent
		}
		s.pending[cmd.ID] = reply
		s.mu.Unlock()
	}
	buf, err := codec.AppendCommand(nil, s.c.opts.Encoding, cmd)
	if err != nil {
		s.forget(cmd.ID)
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.c.opts.WriteTimeout)
	defer cancel()
	if err := s.ws.Write(ctx, s.msgType, buf); err != nil {
		s.end(fmt.Errorf("client: write: %w", err))
		_ = s.ws.CloseNow()
		return ErrDisconnected
	}
	return nil
}

func (c *Client) newID() uint32 {
	for {
		if id := c.nextID.Add(1); id != 0 {
			return id
		}
	}
}

// forget drops a pending reply (its caller gave up); false when the reader
// (or failPending) has already taken it, so its result is on its way.
func (s *session) forget(id uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, pending := s.pending[id]
	delete(s.pending, id)
	return pending
}

// takeReply removes and returns the callback for a reply id.
func (s *session) takeReply(id uint32) replyFunc {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn := s.pending[id]
	delete(s.pending, id)
	return fn
}

// failPending fails every command still waiting, once the session has
// ended (its reader is gone, so no reply can come any more).
func (s *session) failPending() {
	s.mu.Lock()
	s.failed = true
	pending := s.pending
	s.pending = nil
	s.mu.Unlock()
	for _, fn := range pending {
		fn(nil, ErrDisconnected)
	}
}

// roundTrip sends cmd and waits for its reply. The copy function runs on
// the reader goroutine and must copy what it keeps out of the frame.
func (s *session) roundTrip(ctx context.Context, cmd *codec.Command, keep func(*codec.ServerFrame)) error {
	result := make(chan error, 1)
	err := s.send(cmd, func(f *codec.ServerFrame, err error) {
		if err == nil && f.ErrCode != 0 {
			err = &ServerError{Code: f.ErrCode, Message: string(f.ErrMessage)}
		}
		if err == nil && keep != nil {
			keep(f)
		}
		result <- err
	})
	if err != nil {
		return err
	}
	select {
	case err := <-result:
		return err
	case <-ctx.Done():
		if !s.forget(cmd.ID) {
			return <-result // the reply came meanwhile: report it
		}
		return fmt.Errorf("%w: %w", errNoReply, ctx.Err())
	}
}

// errNoReply: the caller stopped waiting after the command was written, so
// it may have taken effect (a publish's outcome is unknown).
var errNoReply = errors.New("client: gave up waiting for the reply")
