// Package centrifugo makes Centrifugo (github.com/centrifugal/centrifugo)
// a target of wsbench: it installs a pinned release with "go install"
// into a cache directory outside the repository, writes the configuration
// a user would pick for the benchmark's job, and speaks its JSON client
// protocol (v2) and server HTTP API for the harness.
//
//   - install.go: the pinned version, the cache directory, go install;
//   - config.go: the configuration file and the command line;
//   - protocol.go: commands, the frame scanner, the stamped payload;
//   - dialect.go: the protocol as a drive.Dialect for the load client;
//   - publisher.go: publishing through the HTTP API as a drive.Publisher;
//   - metrics.go: what the harness reads from its Prometheus endpoint.
//
// Nothing of Centrifugo is a dependency of this module: it runs as a child
// process, and only its wire formats are known here.
package centrifugo
