// Package harness is the root of wsbench's measurement machinery. Each job
// lives in its own sub-package:
//
//   - procfs: what the kernel says about a process and the host (/proc)
//   - fit: least-squares lines, so per-connection costs are slopes over
//     several sizes rather than one noisy ratio
//   - hist: a lock-free latency histogram for millions of samples
//   - server: starting and stopping the servers under test as child processes
//   - scrape: the servers' debug endpoints (heap, goroutines, /metrics)
//   - wire: the client-protocol frames a scenario sends and the timestamped
//     payload it measures latency with
//   - sleepers: subscribers that never read (the slow-consumer scenario)
//   - results: the JSON every run writes and the million-connection projection
//   - report: terminal tables, the Markdown report and its SVG charts
//   - progress: the progress line on stderr
//
// This package itself holds nothing but this map.
package harness
