package actors

import (
	"fmt"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
)

// echoActor answers on the channel it is sent, after a call chain using
// about deep KiB of stack (the node's actors go through encoding, the
// transport and the WAL's API below Receive).
type echoActor struct{ deep int }

func (e echoActor) Receive(ctx actor.Context) {
	if ch, ok := ctx.Message().(chan struct{}); ok {
		useStack(e.deep)
		ch <- struct{}{}
	}
}

//go:noinline
func useStack(kib int) byte {
	var frame [1024]byte
	if kib <= 0 {
		return 0
	}
	frame[kib%1024] = byte(kib)
	return frame[0] + useStack(kib-1)
}

// BenchmarkActorHop measures one message into an actor's mailbox and its
// answer back to a waiting goroutine (as the RPC handlers wait for a segment
// actor), on the pool dispatcher the hot actors use and on protoactor's
// default one (a new goroutine per mailbox wake-up). The mailbox is idle
// before every message, so each hop wakes it.
func BenchmarkActorHop(b *testing.B) {
	for _, tc := range []struct {
		name  string
		props []actor.PropsOption
	}{{"pool", []actor.PropsOption{newHotProps()}}, {"default", nil}} {
		for _, deep := range []int{0, 16} {
			b.Run(fmt.Sprintf("%s/stack=%dKiB", tc.name, deep), func(b *testing.B) {
				benchHop(b, deep, tc.props)
			})
		}
	}
}

func benchHop(b *testing.B, deep int, props []actor.PropsOption) {
	sys := actor.NewActorSystem()
	defer sys.Shutdown()
	pid := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return echoActor{deep: deep} }, props...))
	ch := make(chan struct{}, 1)
	b.ReportAllocs()
	for b.Loop() {
		sys.Root.Send(pid, ch)
		<-ch
	}
}
