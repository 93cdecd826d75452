package app

import (
	"context"
	"errors"
)

// Run is a placeholder so cmd/berth compiles until app.go lands; delete
// this file then.
func Run(ctx context.Context, opts Options) error {
	return errors.New("app.Run: not implemented")
}
