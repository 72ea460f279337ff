package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"time"

	"github.com/walrus-go/walrus/client"
)

// These examples need a running cluster (e.g. `walrus dev`, client ports
// 9091-9093), so they are compiled but not run.

func Example() {
	ctx := context.Background()
	c, err := client.Dial(ctx, []string{"127.0.0.1:9091", "127.0.0.1:9092", "127.0.0.1:9093"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	if err := c.Register(ctx, "logs"); err != nil {
		log.Fatal(err)
	}
	if err := c.Put(ctx, "logs", []byte("hello world")); err != nil {
		log.Fatal(err)
	}
	payload, ok, err := c.Get(ctx, "logs")
	if err != nil {
		log.Fatal(err)
	}
	if ok {
		fmt.Printf("%s\n", payload)
	}
}

func ExampleDial_options() {
	c, err := client.Dial(context.Background(), []string{"127.0.0.1:9091"},
		client.WithPoolSize(4),
		client.WithRequestTimeout(5*time.Second),
		client.WithRetry(client.RetryPolicy{Attempts: 20, MinBackoff: 20 * time.Millisecond, MaxBackoff: 2 * time.Second}),
		client.WithRandSource(rand.NewPCG(1, 2)), // reproducible jitter
	)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
}

func ExampleClient_PutBatch() {
	ctx := context.Background()
	c, err := client.Dial(ctx, []string{"127.0.0.1:9091"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ranges, err := c.PutBatch(ctx, "logs", [][]byte{[]byte("a"), []byte("b"), []byte("c")})
	switch {
	case client.IsOutcomeUnknown(err):
		// the entries may or may not be in the log: check before writing
		// them again, or accept duplicates
		log.Printf("unknown outcome: %v", err)
	case err != nil:
		log.Fatal(err)
	}
	// a batch that filled a segment comes back in several ranges
	for _, r := range ranges {
		fmt.Printf("offsets %d..%d\n", r.First, r.First+uint64(r.Count)-1)
	}
}

func ExampleClient_Read() {
	ctx := context.Background()
	c, err := client.Dial(ctx, []string{"127.0.0.1:9091"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// replay the whole topic, 500 entries at a time
	for next := uint64(0); ; {
		first, entries, err := c.Read(ctx, "logs", next, 500)
		if err != nil {
			log.Fatal(err)
		}
		if len(entries) == 0 {
			break // the end, for now
		}
		for i, e := range entries {
			fmt.Printf("%d: %s\n", first+uint64(i), e)
		}
		next = first + uint64(len(entries))
	}
}

func ExampleClient_GroupRead() {
	ctx := context.Background()
	c, err := client.Dial(ctx, []string{"127.0.0.1:9091"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	for {
		first, entries, err := c.GroupRead(ctx, "logs", "billing", 100, 10*time.Second)
		if err != nil {
			log.Fatal(err)
		}
		for _, e := range entries {
			fmt.Printf("%s\n", e) // process
		}
		if len(entries) > 0 {
			if err := c.Commit(ctx, "logs", "billing", first+uint64(len(entries))); err != nil {
				log.Fatal(err)
			}
		}
	}
}

func ExampleServerError() {
	ctx := context.Background()
	c, err := client.Dial(ctx, []string{"127.0.0.1:9091"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	err = c.Put(ctx, "nope", []byte("x"))
	var se *client.ServerError
	if errors.As(err, &se) {
		fmt.Println(se.Msg) // "unknown topic nope", as the server wrote it
	}
	if client.IsUnknownTopic(err) {
		_ = c.Register(ctx, "nope")
	}
}
