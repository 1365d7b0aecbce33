package main

import "testing"

// TestCompressionSettings: --compression is on by default with a 256-byte
// threshold; the flags turn it off or move the threshold, and a namespace
// of the config file turns it off for its channels only.
func TestCompressionSettings(t *testing.T) {
	f, err := serveSettings(t)
	if err != nil {
		t.Fatal(err)
	}
	if !f.cfg.Compression || f.cfg.CompressionMinBytes != 256 {
		t.Fatalf("defaults: compression %v, min bytes %d", f.cfg.Compression, f.cfg.CompressionMinBytes)
	}
	f, err = serveSettings(t, "--compression=false", "--compression-min-bytes", "1024")
	if err != nil {
		t.Fatal(err)
	}
	if f.cfg.Compression || f.cfg.CompressionMinBytes != 1024 {
		t.Fatalf("flags: compression %v, min bytes %d", f.cfg.Compression, f.cfg.CompressionMinBytes)
	}
	path := writeFile(t, "wsgate.yaml", "compression_min_bytes: 512\nnamespaces:\n  raw:\n    compression: false\n")
	f, err = serveSettings(t, "--config", path)
	if err != nil {
		t.Fatal(err)
	}
	ns := f.cfg.Namespaces
	if f.cfg.CompressionMinBytes != 512 || !ns.For("chat:x").Compression || ns.For("raw:x").Compression {
		t.Fatalf("config file: min bytes %d, chat %v, raw %v", f.cfg.CompressionMinBytes, ns.For("chat:x").Compression, ns.For("raw:x").Compression)
	}
	f, err = serveSettings(t, "--compression-min-bytes", "-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.cfg.Validate(); err == nil {
		t.Fatal("a negative --compression-min-bytes passed Validate")
	}
}
