package server

import "context"

// Launcher starts a scenario's servers the run's way (its flags, broker
// and executables: cmd/wsbench owns those) so that a scenario package
// needs to know only which design it wants and with which extra flags.
// What goes wrong is recorded in the run's problems by the launcher.
type Launcher interface {
	// Spec is how design is started with extra flags, for a caller that
	// changes it before Start (a restart on the same address).
	Spec(design string, extra ...string) (Spec, error)
	// Start starts design with extra flags.
	Start(ctx context.Context, design string, extra ...string) (*Process, error)
	// Stop stops p once its clients are gone (nil: nothing to stop).
	Stop(p *Process)
}
