package client_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"time"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/gateway/client"
)

func Example() {
	url, stop := startExampleGateway() // a wsgate on a free port, for this example
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{
		OnState: func(s client.State) {
			if s.Kind == client.StateDisconnected {
				log.Printf("disconnected (%d %s), retrying in %v", s.Code, s.Reason, s.Delay)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	got := make(chan string, 1)
	_, err = c.Subscribe(ctx, "chat:room1", func(ev client.Event) {
		switch e := ev.(type) {
		case client.Publication:
			got <- fmt.Sprintf("%s at offset %d", e.Data, e.Offset)
		case client.Subscribed:
			if e.Lost() {
				log.Printf("missed messages in %s (%s): reload the room", e.Channel, e.Reason)
			}
		case client.Gap, client.EpochChanged:
			log.Printf("missed messages: %#v: reload the room", e)
		}
	})
	if err != nil {
		log.Fatal(err)
	}

	// A key makes the publish safe to retry after a lost reply.
	key := client.WithIdempotencyKey(client.NewIdempotencyKey())
	if _, err := c.Publish(ctx, "chat:room1", []byte("hello"), key); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-got)
	// Output: hello at offset 1
}

// startExampleGateway runs an in-process gateway with the embedded broker
// and returns its client URL and a stop function.
func startExampleGateway() (string, func()) {
	cfg := gateway.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DrainWindow = 10 * time.Millisecond
	srv, err := gateway.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	return "ws://" + srv.Addr().String() + "/ws", func() {
		cancel()
		<-done
	}
}
