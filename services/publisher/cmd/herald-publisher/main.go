// Command herald-publisher runs Herald's publisher on its own, configured from HERALD_* variables.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/caarlos0/env/v11"

	"github.com/heraldhq/herald/services/publisher/publisherd"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("herald-publisher stopped", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg, err := env.ParseAs[publisherd.Config]()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	svc, err := publisherd.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
