// Package ui holds Standin's browser interface: a single-page app written as
// plain HTML, CSS and ES modules with no build step, compiled into the server
// binary so that one executable serves the API, the WebSocket and the UI.
//
// The assets are designed for the server's Content-Security-Policy
// (default-src 'self'; script-src 'self'; style-src 'self'; …): they load
// nothing from other origins and use no inline scripts, inline styles or
// inline event handlers.
package ui

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// Files returns the UI's assets rooted so that index.html, style.css,
// favicon.svg and js/*.js sit at the top level, ready to be served from "/"
// by an HTTP file server. The app is a single page served at "/"; it keeps
// its views in memory, not in the URL path.
func Files() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		// fs.Sub only fails for an invalid path; "static" is a constant,
		// valid path embedded above.
		panic("ui: " + err.Error())
	}
	return sub
}
