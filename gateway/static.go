package gateway

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"
)

// The demo chat page (--demo): its files and the JavaScript client they
// import, embedded in the binary. The client listener is not an HTTP
// server: a plain GET of one of these paths is answered with a complete,
// precomputed response ("Connection: close") and the connection is closed
// like a refused handshake — nothing stays behind per connection, and the
// response bytes are shared by every connection that asks.
//
//go:embed client/js/demo client/js/src
var demoFS embed.FS

// demoSite maps a request path to its GET and HEAD responses.
type demoSite map[string]demoResponse

type demoResponse struct{ get, head []byte }

var (
	demoOnce  sync.Once
	demoPages demoSite
)

// demo returns the demo site, built from demoFS on first use.
func demo() demoSite {
	demoOnce.Do(func() { demoPages = buildDemoSite(demoFS) })
	return demoPages
}

// buildDemoSite lays out the URL space: / is the page, /demo/* its assets,
// /demo/wsgate-client/* the client's modules.
func buildDemoSite(files fs.FS) demoSite {
	site := demoSite{}
	add := func(urlPath, file string) {
		body, err := fs.ReadFile(files, file)
		if err != nil {
			panic(fmt.Sprintf("embedded demo file %s: %v", file, err)) // a build defect, not input
		}
		site[urlPath] = staticResponse(body, contentType(file))
	}
	add("/", "client/js/demo/index.html")
	for _, dir := range []struct{ url, fs string }{
		{"/demo/", "client/js/demo"},
		{"/demo/wsgate-client/", "client/js/src"},
	} {
		ents, err := fs.ReadDir(files, dir.fs)
		if err != nil {
			panic(fmt.Sprintf("embedded demo dir %s: %v", dir.fs, err))
		}
		for _, e := range ents {
			if !e.IsDir() && e.Name() != "index.html" {
				add(dir.url+e.Name(), dir.fs+"/"+e.Name())
			}
		}
	}
	return site
}

func contentType(file string) string {
	switch path.Ext(file) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	}
	return "application/octet-stream"
}

// demoCSP confines the page to its own origin: its scripts, its styles and
// WebSocket connections back to the gateway that served it.
const demoCSP = "default-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func staticResponse(body []byte, ctype string) demoResponse {
	head := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\nCache-Control: no-cache\r\n"+
		"X-Content-Type-Options: nosniff\r\nContent-Security-Policy: %s\r\nConnection: close\r\n\r\n", ctype, len(body), demoCSP)
	get := make([]byte, 0, len(head)+len(body))
	get = append(append(get, head...), body...)
	return demoResponse{get: get, head: []byte(head)}
}

// staticResponse answers req (a complete request head) when it is a GET or
// HEAD of a demo path that is not one of the WebSocket endpoints; nil
// otherwise (the request goes on as an upgrade).
func (u *upgrader) staticResponse(req []byte) []byte {
	if !u.cfg.Demo {
		return nil
	}
	line, _, _ := bytes.Cut(req, []byte("\r\n"))
	method, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok || (string(method) != "GET" && string(method) != "HEAD") {
		return nil
	}
	target, version, ok := bytes.Cut(rest, []byte(" "))
	if !ok || !strings.HasPrefix(string(version), "HTTP/1.") || u.route(target) != 0 {
		return nil
	}
	p, _, _ := bytes.Cut(target, []byte("?"))
	r, found := demo()[string(p)]
	switch {
	case !found:
		return nil
	case string(method) == "HEAD":
		return r.head
	}
	return r.get
}
