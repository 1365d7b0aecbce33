// Package million is the scenario behind "wsbench million": as many
// connections as asked for (a million by default) held at once on one host
// whose processes may each open at most ~20,000 files.
//
// The layout works around that cap the way a production host with several
// gateway instances would: many server processes share one port with
// SO_REUSEPORT (the kernel spreads connections over them by a hash of the
// 4-tuple) and talk to each other through one local Redis; many
// load-client processes ("wsbench million-client", see RunClient) bind
// distinct 127.0.0.x source addresses so no (source, destination) pair runs
// out of ephemeral ports. Plan works out how many of each.
//
// A run prepares the host from the repository's sysctl profiles (and puts
// every value back afterwards, even when interrupted), asks `wsgate doctor`
// whether the host is ready, ramps to the target with every connection
// upgraded on /ws and subscribed to one channel, holds them idle for at
// least two ping intervals, publishes one message to that channel and then
// a burst, and tears everything down. Then the naive server gets the same
// ramp until it runs out of memory or time. Memory, CPU, GC pauses and
// broadcast completion go into a results.Million per design.
package million
