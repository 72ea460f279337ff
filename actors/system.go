package actors

import (
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
)

// NewActorSystem builds a protoactor system whose own logging goes into base
// at min level or above (protoactor's default is coloured text at Info).
func NewActorSystem(base *slog.Logger, min slog.Level) *actor.ActorSystem {
	l := WithFloor(base, min).With("lib", "protoactor")
	return actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return l }),
		actor.WithDeveloperSupervisionLogging(false),
	)
}
